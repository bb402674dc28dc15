//! Code page 858 (CP850 with the euro sign at 0xD5): what Epson-class printers use for
//! Spanish, Catalan, Portuguese and most Western European text once `ESC t 19` selects it.
//!
//! [`encode`] turns UTF-8 into CP858 bytes, replacing what the page cannot show with a close
//! ASCII form or `?`; [`decode_byte`] is its inverse, used by the printer emulator.

/// `ESC t n` value that selects CP858 on Epson TM printers.
pub const ESC_T_CP858: u8 = 19;

/// The upper half (0x80-0xFF) of CP858.
const HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', 'ø', '£', 'Ø', '×', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '®', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', 'Á', 'Â', 'À', '©', '╣', '║', '╗', '╝', '¢', '¥', '┐', //
    '└', '┴', '┬', '├', '─', '┼', 'ã', 'Ã', '╚', '╔', '╩', '╦', '╠', '═', '╬', '¤', //
    'ð', 'Ð', 'Ê', 'Ë', 'È', '€', 'Í', 'Î', 'Ï', '┘', '┌', '█', '▄', '¦', 'Ì', '▀', //
    'Ó', 'ß', 'Ô', 'Ò', 'õ', 'Õ', 'µ', 'þ', 'Þ', 'Ú', 'Û', 'Ù', 'ý', 'Ý', '¯', '´', //
    '\u{ad}', '±', '‗', '¾', '¶', '§', '÷', '¸', '°', '¨', '·', '¹', '³', '²', '■', '\u{a0}',
];

/// The CP858 byte for `c`, if the page has it. Control characters other than LF are refused
/// so that text can never smuggle printer commands.
pub fn encode_char(c: char) -> Option<u8> {
    match c {
        '\n' => Some(b'\n'),
        ' '..='~' => Some(c as u8),
        _ => HIGH
            .iter()
            .position(|&h| h == c)
            // position < 128, so 0x80 + position fits in a byte.
            .map(|i| 0x80 + i as u8),
    }
}

/// Encodes text for the printer, replacing characters the page lacks.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if let Some(b) = encode_char(c) {
            out.push(b);
            continue;
        }
        let fallback = match c {
            '‘' | '’' | '‚' => "'",
            '“' | '”' | '„' => "\"",
            '–' | '—' => "-",
            '…' => "...",
            '\t' => " ",
            '\r' => "",
            _ => "?",
        };
        out.extend_from_slice(fallback.as_bytes());
    }
    out
}

/// The character a CP858 byte prints as (control bytes below 0x20 are not text).
pub fn decode_byte(b: u8) -> char {
    if b < 0x80 {
        char::from(b)
    } else {
        HIGH[usize::from(b - 0x80)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_text_and_euro_round_trip() {
        let text = "Jamón ibérico Año ¿Qué? ¡Sí! ÁÉÍÓÚ üÜ çÇ 12,34 €";
        let bytes = encode(text);
        assert_eq!(bytes.len(), text.chars().count());
        let back: String = bytes.iter().map(|&b| decode_byte(b)).collect();
        assert_eq!(back, text);
        assert_eq!(encode("€"), vec![0xD5]);
        assert_eq!(encode("ñ"), vec![0xA4]);
    }

    #[test]
    fn unknown_characters_and_controls_are_replaced() {
        assert_eq!(encode("a\u{1b}b”中"), b"a?b\"?".to_vec());
    }
}

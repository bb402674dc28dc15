//! Keyboard-wedge decoding: Linux evdev key codes to characters for US and Spanish layouts.
//!
//! A keyboard-wedge scanner "types" each code and presses Enter. [`WedgeDecoder`] tracks Shift,
//! AltGr and Ctrl and turns key presses into characters with the layout the scanner is set to;
//! Enter ends a scan. Ctrl+] (GS) carries FNC1 for GS1 codes, as most scanners send it.

use serde::Deserialize;

/// Keyboard layout the scanner emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyboardLayout {
    /// US QWERTY.
    #[default]
    Us,
    /// Spanish (Spain) ISO.
    Es,
}

/// Linux input key codes used here (linux/input-event-codes.h).
mod code {
    pub const ENTER: u16 = 28;
    pub const KP_ENTER: u16 = 96;
    pub const LEFT_SHIFT: u16 = 42;
    pub const RIGHT_SHIFT: u16 = 54;
    pub const LEFT_CTRL: u16 = 29;
    pub const RIGHT_CTRL: u16 = 97;
    pub const RIGHT_ALT: u16 = 100;
    pub const RIGHT_BRACE: u16 = 27;
}

/// Characters for key codes 2..=13 (digit row), 16..=27 (Q row), 30..=41 (A row plus the key
/// left of 1), 43 (ISO key right of the A row), 44..=53 (Z row), 57 (space), 86 (ISO key left
/// of Z): (unshifted, shifted) per layout.
fn base(layout: KeyboardLayout, code: u16) -> Option<(char, char)> {
    let (plain, shifted, table_start): (&str, &str, u16) = match (layout, code) {
        (_, 57) => return Some((' ', ' ')),
        (KeyboardLayout::Us, 2..=13) => ("1234567890-=", "!@#$%^&*()_+", 2),
        (KeyboardLayout::Us, 16..=27) => ("qwertyuiop[]", "QWERTYUIOP{}", 16),
        (KeyboardLayout::Us, 30..=41) => ("asdfghjkl;'`", "ASDFGHJKL:\"~", 30),
        (KeyboardLayout::Us, 43) => return Some(('\\', '|')),
        (KeyboardLayout::Us, 44..=53) => ("zxcvbnm,./", "ZXCVBNM<>?", 44),
        (KeyboardLayout::Us, 86) => return Some(('\\', '|')),
        (KeyboardLayout::Es, 2..=13) => ("1234567890'¡", "!\"·$%&/()=?¿", 2),
        (KeyboardLayout::Es, 16..=27) => ("qwertyuiop`+", "QWERTYUIOP^*", 16),
        (KeyboardLayout::Es, 30..=41) => ("asdfghjklñ´º", "ASDFGHJKLÑ¨ª", 30),
        (KeyboardLayout::Es, 43) => return Some(('ç', 'Ç')),
        (KeyboardLayout::Es, 44..=53) => ("zxcvbnm,.-", "ZXCVBNM;:_", 44),
        (KeyboardLayout::Es, 86) => return Some(('<', '>')),
        _ => return None,
    };
    let i = usize::from(code - table_start);
    Some((plain.chars().nth(i)?, shifted.chars().nth(i)?))
}

/// Characters typed with AltGr on the Spanish layout (US has none a scanner would use).
fn altgr(layout: KeyboardLayout, code: u16) -> Option<char> {
    if layout != KeyboardLayout::Es {
        return None;
    }
    Some(match code {
        2 => '|',
        3 => '@',
        4 => '#',
        5 => '~',
        6 => '€',
        7 => '¬',
        26 => '[',
        27 => ']',
        40 => '{',
        41 => '\\',
        43 => '}',
        _ => return None,
    })
}

/// The numeric keypad, which some scanners use for digits whatever the layout.
fn keypad(code: u16) -> Option<char> {
    Some(match code {
        71 => '7',
        72 => '8',
        73 => '9',
        74 => '-',
        75 => '4',
        76 => '5',
        77 => '6',
        78 => '+',
        79 => '1',
        80 => '2',
        81 => '3',
        82 => '0',
        83 => '.',
        98 => '/',
        55 => '*',
        _ => return None,
    })
}

/// The character a key press types, given the modifiers held.
pub fn key_char(layout: KeyboardLayout, code: u16, shift: bool, alt_gr: bool) -> Option<char> {
    if alt_gr {
        return altgr(layout, code);
    }
    if let Some(c) = keypad(code) {
        return Some(c);
    }
    base(layout, code).map(|(plain, shifted)| if shift { shifted } else { plain })
}

/// Longest scan typed by a wedge before it is cut (a stuck key must not grow memory).
const WEDGE_LINE_CHARS_MAX: usize = crate::devices::barcode::SCAN_LEN_MAX;

/// Turns key events into scans.
#[derive(Debug, Default)]
pub struct WedgeDecoder {
    layout: KeyboardLayout,
    shift: u8,
    ctrl: u8,
    alt_gr: bool,
    line: String,
}

impl WedgeDecoder {
    /// A decoder for `layout`, no key held.
    pub fn new(layout: KeyboardLayout) -> WedgeDecoder {
        WedgeDecoder {
            layout,
            ..WedgeDecoder::default()
        }
    }

    /// Feeds one key event (`value`: 1 press, 0 release, 2 autorepeat); returns a scan when
    /// Enter is pressed after some characters.
    pub fn key(&mut self, code: u16, value: i32) -> Option<String> {
        let pressed = value != 0;
        match code {
            code::LEFT_SHIFT | code::RIGHT_SHIFT => {
                self.shift = modifier(self.shift, pressed);
                return None;
            }
            code::LEFT_CTRL | code::RIGHT_CTRL => {
                self.ctrl = modifier(self.ctrl, pressed);
                return None;
            }
            code::RIGHT_ALT => {
                self.alt_gr = pressed;
                return None;
            }
            _ => {}
        }
        if value != 1 {
            return None;
        }
        if code == code::ENTER || code == code::KP_ENTER {
            return (!self.line.is_empty()).then(|| std::mem::take(&mut self.line));
        }
        let c = if self.ctrl > 0 && code == code::RIGHT_BRACE {
            Some('\u{1d}')
        } else {
            key_char(self.layout, code, self.shift > 0, self.alt_gr)
        };
        if let Some(c) = c {
            if self.line.chars().count() < WEDGE_LINE_CHARS_MAX {
                self.line.push(c);
            }
        }
        None
    }
}

fn modifier(held: u8, pressed: bool) -> u8 {
    if pressed {
        held.saturating_add(1).min(2)
    } else {
        held.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_keys(layout: KeyboardLayout, keys: &[(u16, i32)]) -> Vec<String> {
        let mut d = WedgeDecoder::new(layout);
        keys.iter().filter_map(|&(c, v)| d.key(c, v)).collect()
    }

    fn press(code: u16) -> [(u16, i32); 2] {
        [(code, 1), (code, 0)]
    }

    #[test]
    fn digits_and_enter_make_an_ean_scan_on_both_layouts() {
        // 8 4 1 2 ... : key codes 9, 5, 2, 3 are "8", "4", "1", "2" on both layouts.
        let mut keys: Vec<(u16, i32)> = Vec::new();
        for c in "8412345678905".chars() {
            let code = match c {
                '0' => 11,
                d => d as u16 - '1' as u16 + 2,
            };
            keys.extend(press(code));
        }
        keys.extend(press(28));
        for layout in [KeyboardLayout::Us, KeyboardLayout::Es] {
            assert_eq!(type_keys(layout, &keys), ["8412345678905"]);
        }
    }

    #[test]
    fn shifted_and_layout_specific_characters() {
        // Shift+P U 1 Shift+. on US gives "PU1:"-like text; on ES Shift+. is ':'.
        let mut keys = vec![(42, 1)];
        keys.extend(press(25));
        keys.extend(press(22));
        keys.push((42, 0));
        keys.extend(press(2));
        keys.push((42, 1));
        keys.extend(press(52));
        keys.push((42, 0));
        keys.extend(press(39));
        keys.extend(press(28));
        assert_eq!(type_keys(KeyboardLayout::Us, &keys), ["PU1>;"]);
        assert_eq!(type_keys(KeyboardLayout::Es, &keys), ["PU1:ñ"]);
        assert_eq!(key_char(KeyboardLayout::Es, 53, false, false), Some('-'));
        assert_eq!(key_char(KeyboardLayout::Us, 53, false, false), Some('/'));
        assert_eq!(key_char(KeyboardLayout::Es, 3, false, true), Some('@'));
        assert_eq!(key_char(KeyboardLayout::Es, 43, true, false), Some('Ç'));
        assert_eq!(key_char(KeyboardLayout::Us, 82, false, false), Some('0'));
    }

    #[test]
    fn ctrl_right_bracket_types_the_gs1_separator() {
        let mut keys = vec![(29, 1)];
        keys.extend(press(27));
        keys.push((29, 0));
        keys.extend(press(2));
        keys.extend(press(28));
        assert_eq!(type_keys(KeyboardLayout::Es, &keys), ["\u{1d}1"]);
    }

    #[test]
    fn autorepeat_and_unknown_keys_are_ignored() {
        let keys = [(2, 1), (2, 2), (2, 0), (200, 1), (28, 1), (28, 1)];
        assert_eq!(type_keys(KeyboardLayout::Us, &keys), ["1"]);
    }
}

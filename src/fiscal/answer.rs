//! The AEAT's answer to a submission (`RespuestaRegFactuSistemaFacturacion` of
//! RespuestaSuministro.xsd, in a SOAP envelope), read by element local names, and what it
//! means for each record sent. Pure: bytes in, decisions out; never panics on any input.

use crate::domain::fiscal::{InvoiceRecord, RecordKind};
use crate::store::fiscal::RecordAnswer;

/// Largest answer read: 1,000 records answered with long messages fit well within it.
pub const ANSWER_BYTES_MAX: usize = 8 << 20;
/// AEAT error code of a record it already holds (`Registro de facturación duplicado`): a
/// resend after a crash between sending and saving the answer, so the record is registered.
pub const CODE_DUPLICATE: &str = "3000";

/// One `RespuestaLinea`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub numserie: String,
    /// `Alta` or `Anulacion`.
    pub operation: String,
    /// `Correcto`, `AceptadoConErrores` or `Incorrecto`.
    pub state: String,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// A parsed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub csv: Option<String>,
    /// `Correcto`, `ParcialmenteCorrecto` or `Incorrecto`.
    pub state: String,
    /// Seconds to wait before the next submission.
    pub wait_s: u64,
    pub lines: Vec<Line>,
}

/// Why an answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// A SOAP fault: the whole message was refused.
    #[error("soap fault {code}: {message}")]
    Fault { code: String, message: String },
    /// Not an answer to a registration.
    #[error("not a RespuestaRegFactuSistemaFacturacion ({0})")]
    Unexpected(String),
}

/// Read an answer body.
pub fn parse(body: &str) -> Result<Answer, AnswerError> {
    let mut answer = Answer::default();
    let mut seen_root = false;
    let mut fault: Option<(String, String)> = None;
    let mut line: Option<Line> = None;
    for (path, text) in elements(body) {
        let name = path.last().map(String::as_str).unwrap_or("");
        let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
        match name {
            "RespuestaRegFactuSistemaFacturacion" if text.is_none() => seen_root = true,
            "Fault" => fault = Some(fault.unwrap_or_default()),
            "faultcode" => fault.get_or_insert_with(Default::default).0 = text.unwrap_or_default(),
            "faultstring" => {
                fault.get_or_insert_with(Default::default).1 = text.unwrap_or_default()
            }
            "RespuestaLinea" if text.is_none() => {
                if let Some(done) = line.take() {
                    answer.lines.push(done);
                }
                line = Some(Line::default());
            }
            _ => {
                let Some(text) = text else { continue };
                match (name, line.as_mut()) {
                    ("CSV", None) => answer.csv = Some(text),
                    ("EstadoEnvio", _) => answer.state = text,
                    ("TiempoEsperaEnvio", _) => answer.wait_s = text.trim().parse().unwrap_or(60),
                    ("NumSerieFactura" | "NumSerieFacturaAnulada", Some(l))
                        if parent == Some("IDFactura") =>
                    {
                        l.numserie = text
                    }
                    ("TipoOperacion", Some(l)) => l.operation = text,
                    ("EstadoRegistro", Some(l)) => l.state = text,
                    ("CodigoErrorRegistro", Some(l)) => l.code = Some(text),
                    ("DescripcionErrorRegistro", Some(l)) => l.message = Some(text),
                    _ => {}
                }
            }
        }
    }
    if let Some(done) = line.take() {
        answer.lines.push(done);
    }
    if let Some((code, message)) = fault {
        return Err(AnswerError::Fault { code, message });
    }
    if !seen_root || answer.state.is_empty() {
        let start: String = body.chars().take(120).collect();
        return Err(AnswerError::Unexpected(start));
    }
    Ok(answer)
}

/// Each record's answer, for the records of `batch` in order, stopping at the first record
/// the answer does not mention (it and those after it are sent again).
pub fn answers_for(answer: &Answer, batch: &[InvoiceRecord]) -> Vec<RecordAnswer> {
    let mut out = Vec::with_capacity(batch.len());
    let mut used = vec![false; answer.lines.len()];
    for r in batch {
        let op = match r.kind {
            RecordKind::Alta => "Alta",
            RecordKind::Anulacion => "Anulacion",
        };
        let numserie = r.numserie();
        let found = answer.lines.iter().enumerate().find(|(i, l)| {
            !used[*i] && l.numserie == numserie && (l.operation.is_empty() || l.operation == op)
        });
        let status = match found {
            Some((i, l)) => {
                used[i] = true;
                let status = match (l.state.as_str(), l.code.as_deref()) {
                    ("Correcto", _) | (_, Some(CODE_DUPLICATE)) => "accepted",
                    ("AceptadoConErrores", _) => "accepted_with_errors",
                    _ => "rejected",
                };
                RecordAnswer {
                    position: r.position,
                    status: status.to_string(),
                    code: l.code.clone(),
                    message: l.message.clone(),
                    csv: answer.csv.clone(),
                }
            }
            // A fully correct submission may leave out the per-record lines.
            None if answer.state == "Correcto" => RecordAnswer {
                position: r.position,
                status: "accepted".to_string(),
                code: None,
                message: None,
                csv: answer.csv.clone(),
            },
            None => break,
        };
        out.push(status);
    }
    out
}

/// Every element of an XML text, in document order, as (path of local names, its text when
/// it holds text only; `None` for an element with children). Malformed input ends the scan
/// early; it never panics.
fn elements(body: &str) -> Vec<(Vec<String>, Option<String>)> {
    let mut out: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    // The element opened last, while no child has opened inside it: a leaf so far.
    let mut open_leaf: Option<usize> = None;
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(closing) = tag.strip_prefix('/') {
            if let Some(i) = open_leaf.take() {
                out[i].1 = Some(unescape(text.trim()));
            }
            if stack.last().map(String::as_str) == Some(local(closing.trim())) {
                stack.pop();
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag
            .trim_end_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or("");
        stack.push(local(name).to_string());
        out.push((stack.clone(), None));
        open_leaf = Some(out.len() - 1);
        if self_closing {
            let last = out.len() - 1;
            out[last].1 = Some(String::new());
            open_leaf = None;
            stack.pop();
        }
    }
    out
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let Some(semi) = rest[amp..].find(';') else {
            out.push_str(&rest[amp..]);
            return out;
        };
        let entity = &rest[amp + 1..amp + semi];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&rest[amp..amp + semi + 1]),
        }
        rest = &rest[amp + semi + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PARTIAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header/><env:Body>
<tikR:RespuestaRegFactuSistemaFacturacion xmlns:tikR="r" xmlns:tik="i">
 <tikR:CSV>A-XYZ</tikR:CSV>
 <tikR:Cabecera><tik:ObligadoEmision><tik:NombreRazon>Tiendas &amp; Co</tik:NombreRazon><tik:NIF>89890001K</tik:NIF></tik:ObligadoEmision></tikR:Cabecera>
 <tikR:TiempoEsperaEnvio>60</tikR:TiempoEsperaEnvio>
 <tikR:EstadoEnvio>ParcialmenteCorrecto</tikR:EstadoEnvio>
 <tikR:RespuestaLinea><tikR:IDFactura><tik:IDEmisorFactura>89890001K</tik:IDEmisorFactura><tik:NumSerieFactura>MC-1</tik:NumSerieFactura><tik:FechaExpedicionFactura>01-01-2026</tik:FechaExpedicionFactura></tikR:IDFactura><tikR:Operacion><tik:TipoOperacion>Alta</tik:TipoOperacion></tikR:Operacion><tikR:EstadoRegistro>Correcto</tikR:EstadoRegistro></tikR:RespuestaLinea>
 <tikR:RespuestaLinea><tikR:IDFactura><tik:IDEmisorFactura>89890001K</tik:IDEmisorFactura><tik:NumSerieFactura>MC-2</tik:NumSerieFactura><tik:FechaExpedicionFactura>01-01-2026</tik:FechaExpedicionFactura></tikR:IDFactura><tikR:Operacion><tik:TipoOperacion>Alta</tik:TipoOperacion></tikR:Operacion><tikR:EstadoRegistro>Incorrecto</tikR:EstadoRegistro><tikR:CodigoErrorRegistro>1100</tikR:CodigoErrorRegistro><tikR:DescripcionErrorRegistro>Valor &lt;incorrecto&gt;</tikR:DescripcionErrorRegistro></tikR:RespuestaLinea>
</tikR:RespuestaRegFactuSistemaFacturacion></env:Body></env:Envelope>"#;

    #[test]
    fn a_partly_correct_answer_gives_each_line_its_state_and_the_wait() {
        let a = parse(PARTIAL).unwrap();
        assert_eq!(a.csv.as_deref(), Some("A-XYZ"));
        assert_eq!(a.state, "ParcialmenteCorrecto");
        assert_eq!(a.wait_s, 60);
        assert_eq!(a.lines.len(), 2);
        assert_eq!(a.lines[0].numserie, "MC-1");
        assert_eq!(a.lines[1].state, "Incorrecto");
        assert_eq!(a.lines[1].code.as_deref(), Some("1100"));
        assert_eq!(a.lines[1].message.as_deref(), Some("Valor <incorrecto>"));
    }

    #[test]
    fn a_soap_fault_refuses_the_whole_message_with_its_reason() {
        let fault = r#"<env:Envelope xmlns:env="e"><env:Body><env:Fault><faultcode>env:Client</faultcode><faultstring>Codigo[4102].El XML no cumple el esquema</faultstring></env:Fault></env:Body></env:Envelope>"#;
        assert_eq!(
            parse(fault),
            Err(AnswerError::Fault {
                code: "env:Client".into(),
                message: "Codigo[4102].El XML no cumple el esquema".into()
            })
        );
        assert!(matches!(
            parse("<html>down</html>"),
            Err(AnswerError::Unexpected(_))
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn mangled_answers_never_panic(cut in 0usize..2000, junk in "[<>/&;:a-z]{0,20}") {
            let mut s: String = PARTIAL.chars().take(cut).collect();
            s.push_str(&junk);
            let _ = parse(&s);
        }
    }
}

//! Invoice records ("registros de facturación") as the chain keeps them, and how one is
//! issued: from the chain's head, the issuer, a draft (what is invoiced) and a stamp (the
//! local date and time of issue, computed by the caller from `now_ms` and the store's zone).

use super::huella::{amount, AltaFields, AnulacionFields};
use super::nif::TaxId;
use serde::{Deserialize, Serialize};

/// `TipoFactura`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InvoiceType {
    /// Full invoice: the customer gave a tax id.
    F1,
    /// Simplified invoice (a till ticket).
    F2,
    /// Rectifying a full invoice.
    R1,
    /// Rectifying a simplified invoice.
    R5,
}

impl InvoiceType {
    pub fn as_str(&self) -> &'static str {
        match self {
            InvoiceType::F1 => "F1",
            InvoiceType::F2 => "F2",
            InvoiceType::R1 => "R1",
            InvoiceType::R5 => "R5",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceType> {
        Some(match s {
            "F1" => InvoiceType::F1,
            "F2" => InvoiceType::F2,
            "R1" => InvoiceType::R1,
            "R5" => InvoiceType::R5,
            _ => return None,
        })
    }

    /// The type of the invoice that rectifies one of this type.
    pub fn rectified_by(&self) -> InvoiceType {
        match self {
            InvoiceType::F1 | InvoiceType::R1 => InvoiceType::R1,
            InvoiceType::F2 | InvoiceType::R5 => InvoiceType::R5,
        }
    }
}

/// A registration ("alta") or a cancellation ("anulación") record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    Alta,
    Anulacion,
}

impl RecordKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Alta => "alta",
            RecordKind::Anulacion => "anulacion",
        }
    }
}

/// VAT of one rate: base and tax in cents (negative on a rectification by differences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatLine {
    pub vat_bp: u32,
    pub base_cents: i64,
    pub cuota_cents: i64,
}

/// An invoice of the same issuer, as a rectifying invoice names it (`IDFactura`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRef {
    pub numserie: String,
    pub fecha: String,
}

/// One record of a store's chain. `huella` covers the fields DESIGN.md section 13 lists;
/// the others (names, VAT rows, references) travel with it for the receipt, the export and
/// the AEAT submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// 1-based place in the store's chain.
    pub position: u64,
    pub kind: RecordKind,
    /// `IDEmisorFactura`.
    pub issuer_nif: String,
    /// `NombreRazonEmisor`.
    pub issuer_name: String,
    pub series: String,
    /// The `n` of `<series>-<n>`: gapless per series over the registrations.
    pub number: u64,
    /// `FechaExpedicionFactura`, `DD-MM-YYYY` (of the cancelled invoice, for a cancellation).
    pub fecha: String,
    pub tipo: InvoiceType,
    pub cuota_cents: i64,
    pub importe_cents: i64,
    pub vat: Vec<VatLine>,
    /// The customer's tax id on a full invoice (F1, R1).
    pub customer_tax_id: Option<String>,
    /// The invoice a rectifying one corrects.
    pub rectifies: Option<InvoiceRef>,
    /// The sale or return this invoice is for.
    pub reference: String,
    /// `FechaHoraHusoGenRegistro`.
    pub generated_at: String,
    /// `HuellaAnterior`: the previous record's `huella`, empty for the first.
    pub previous: String,
    pub huella: String,
}

impl InvoiceRecord {
    /// `NumSerieFactura`: `<series>-<n>`.
    pub fn numserie(&self) -> String {
        format!("{}-{}", self.series, self.number)
    }

    /// The hash its fields give, to compare with `huella`.
    pub fn computed_huella(&self) -> String {
        let numserie = self.numserie();
        match self.kind {
            RecordKind::Alta => AltaFields {
                id_emisor_factura: &self.issuer_nif,
                num_serie_factura: &numserie,
                fecha_expedicion_factura: &self.fecha,
                tipo_factura: self.tipo.as_str(),
                cuota_total: &amount(self.cuota_cents),
                importe_total: &amount(self.importe_cents),
                huella_anterior: &self.previous,
                fecha_hora_huso_gen_registro: &self.generated_at,
            }
            .huella(),
            RecordKind::Anulacion => AnulacionFields {
                id_emisor_factura_anulada: &self.issuer_nif,
                num_serie_factura_anulada: &numserie,
                fecha_expedicion_factura_anulada: &self.fecha,
                huella_anterior: &self.previous,
                fecha_hora_huso_gen_registro: &self.generated_at,
            }
            .huella(),
        }
    }
}

/// Who issues: the store's company and its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub nif: TaxId,
    pub name: String,
    pub series: String,
}

/// The local date and time of issue, formatted as the record needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// `DD-MM-YYYY`.
    pub fecha: String,
    /// ISO 8601 with the zone's offset, e.g. `2024-01-01T19:20:30+01:00`.
    pub generated_at: String,
}

/// Why a stamp could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot place {now_ms} ms in the time zone: {reason}")]
pub struct StampError {
    pub now_ms: u64,
    pub reason: String,
}

impl Stamp {
    /// The stamp of instant `now_ms` (ms since the Unix epoch) in `zone`.
    pub fn at(now_ms: u64, zone: &jiff::tz::TimeZone) -> Result<Stamp, StampError> {
        let fail = |e: jiff::Error| StampError {
            now_ms,
            reason: e.to_string(),
        };
        let ms = i64::try_from(now_ms).map_err(|e| StampError {
            now_ms,
            reason: e.to_string(),
        })?;
        let local = jiff::Timestamp::from_millisecond(ms)
            .map_err(fail)?
            .to_zoned_datetime(zone.clone());
        Ok(Stamp {
            fecha: local.strftime("%d-%m-%Y").to_string(),
            generated_at: local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        })
    }
}

/// What an invoice is for, before it gets its number and its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub tipo: InvoiceType,
    pub vat: Vec<VatLine>,
    pub customer_tax_id: Option<TaxId>,
    pub rectifies: Option<InvoiceRef>,
    pub reference: String,
}

impl InvoiceDraft {
    /// A till sale: F1 when the customer gave a tax id, F2 otherwise. `lines` are
    /// `(qty, unit_cents VAT included, vat_bp)`.
    pub fn sale(
        reference: &str,
        lines: impl IntoIterator<Item = (u32, i64, u32)>,
        customer_tax_id: Option<TaxId>,
    ) -> InvoiceDraft {
        InvoiceDraft {
            tipo: if customer_tax_id.is_some() {
                InvoiceType::F1
            } else {
                InvoiceType::F2
            },
            vat: vat_lines(lines.into_iter().map(|(q, u, v)| (i64::from(q) * u, v))),
            customer_tax_id,
            rectifies: None,
            reference: reference.to_string(),
        }
    }

    /// A rectifying invoice (by differences) for a return or an exchange: R1 for a full
    /// invoice, R5 for a simplified one, naming `original` (none: an R5 naming no invoice,
    /// for a sale made before invoices were issued). `net_lines` are `(gross cents VAT
    /// included, vat_bp)` of what changes hands: negative for refunded units, positive for
    /// units an exchange adds.
    pub fn rectifying(
        reference: &str,
        original: Option<&IssuedInvoice>,
        net_lines: impl IntoIterator<Item = (i64, u32)>,
    ) -> InvoiceDraft {
        InvoiceDraft {
            tipo: original.map_or(InvoiceType::R5, |o| o.tipo.rectified_by()),
            vat: vat_lines(net_lines),
            customer_tax_id: original
                .and_then(|o| o.customer_tax_id.as_deref())
                .and_then(|t| TaxId::parse(t).ok()),
            rectifies: original.map(|o| InvoiceRef {
                numserie: o.numserie.clone(),
                fecha: o.fecha.clone(),
            }),
            reference: reference.to_string(),
        }
    }

    pub fn importe_cents(&self) -> i64 {
        self.vat.iter().map(|v| v.base_cents + v.cuota_cents).sum()
    }
}

/// An invoice already in the chain, as a later rectification needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IssuedInvoice {
    pub position: u64,
    pub numserie: String,
    pub fecha: String,
    pub tipo: InvoiceType,
    pub importe_cents: i64,
    pub customer_tax_id: Option<String>,
}

/// VAT rows, one per rate in rate order, from `(gross cents VAT included, vat_bp)`. The base
/// is rounded half away from zero and the tax is the remainder, so each row adds up exactly
/// to its gross (the receipt's breakdown does the same).
pub fn vat_lines(gross: impl IntoIterator<Item = (i64, u32)>) -> Vec<VatLine> {
    let mut by_rate: std::collections::BTreeMap<u32, i64> = Default::default();
    for (cents, bp) in gross {
        *by_rate.entry(bp).or_default() += cents;
    }
    by_rate
        .into_iter()
        .map(|(vat_bp, gross)| {
            let divisor = 10_000 + i128::from(vat_bp);
            let abs = i128::from(gross).abs();
            let base = (abs * 10_000 * 2 + divisor) / (2 * divisor);
            let base = i64::try_from(base).unwrap_or(i64::MAX) * gross.signum();
            VatLine {
                vat_bp,
                base_cents: base,
                cuota_cents: gross - base,
            }
        })
        .collect()
}

/// The URL of the receipt's QR: `<base>?nif=..&numserie=..&fecha=DD-MM-YYYY&importe=..`, each
/// value percent-encoded (RFC 3986 unreserved characters kept).
pub fn qr_url(base: &str, nif: &str, numserie: &str, fecha: &str, importe_cents: i64) -> String {
    format!(
        "{base}?nif={}&numserie={}&fecha={}&importe={}",
        encode(nif),
        encode(numserie),
        encode(fecha),
        encode(&amount(importe_cents))
    )
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.trim().bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_url_encodes_each_value_like_the_aeat_example() {
        // The AEAT's QR specification ("Características del QR y especificaciones del servicio
        // de cotejo", example of section 4) builds, for NIF 89890001K, invoice
        // "12345678&G33" of 01-01-2024 for 241.4 euros,
        // https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR?nif=89890001K&numserie=12345678%26G33&fecha=01-01-2024&importe=241.4
        // We always write two decimals (241.40), as for the hash.
        assert_eq!(
            qr_url(
                "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR",
                "89890001K",
                "12345678&G33",
                "01-01-2024",
                24140
            ),
            "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR?nif=89890001K&numserie=12345678%26G33&fecha=01-01-2024&importe=241.40"
        );
        assert_eq!(encode("T 1/ñ"), "T%201%2F%C3%B1");
    }

    #[test]
    fn vat_rows_add_up_to_the_gross_and_keep_the_sign() {
        let rows = vat_lines([(2590, 1000), (121, 2100), (297, 400), (-121, 2100)]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].base_cents + rows[2].cuota_cents, 0);
        assert_eq!(rows[1].base_cents, 2355);
        assert_eq!(rows[1].base_cents + rows[1].cuota_cents, 2590);
        let refund = vat_lines([(-121, 2100)]);
        assert_eq!(refund[0].base_cents, -100);
        assert_eq!(refund[0].cuota_cents, -21);
    }

    #[test]
    fn a_stamp_carries_the_madrid_offset_of_its_season() {
        let madrid = jiff::tz::TimeZone::get("Europe/Madrid").unwrap();
        // 2024-01-01T18:20:30Z is 19:20:30 in Madrid (winter, +01:00).
        let winter = Stamp::at(1_704_133_230_000, &madrid).unwrap();
        assert_eq!(winter.fecha, "01-01-2024");
        assert_eq!(winter.generated_at, "2024-01-01T19:20:30+01:00");
        // 2024-07-01T22:30:00Z is already the 2nd in Madrid (summer, +02:00).
        let summer = Stamp::at(1_719_873_000_000, &madrid).unwrap();
        assert_eq!(summer.fecha, "02-07-2024");
        assert_eq!(summer.generated_at, "2024-07-02T00:30:00+02:00");
    }
}

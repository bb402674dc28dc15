//! Records as the AEAT's registration schema writes them: `RegFactuSistemaFacturacion`
//! (SuministroLR.xsd) with a `Cabecera` and up to 1,000 `RegistroFactura`, each a
//! `RegistroAlta` or `RegistroAnulacion` (SuministroInformacion.xsd), elements in the
//! schema's order. Used by `journal export --format xml` and, inside a SOAP envelope, by the
//! submission queue.

use crate::domain::fiscal::huella::amount;
use crate::domain::fiscal::{InvoiceRecord, RecordKind};

/// Namespace of SuministroLR.xsd (prefix `sum`).
pub const NS_LR: &str = "https://www2.agenciatributaria.gob.es/static_files/common/internet/dep/aplicaciones/es/aeat/tike/cont/ws/SuministroLR.xsd";
/// Namespace of SuministroInformacion.xsd (prefix `sum1`).
pub const NS_INFO: &str = "https://www2.agenciatributaria.gob.es/static_files/common/internet/dep/aplicaciones/es/aeat/tike/cont/ws/SuministroInformacion.xsd";
/// Records in one `RegFactuSistemaFacturacion`, as the schema allows.
pub const RECORDS_PER_MESSAGE_MAX: usize = 1_000;

/// The billing system as `SistemaInformatico` names it.
#[derive(Debug, Clone)]
pub struct System {
    /// Producer's name and NIF (the issuer itself for software it runs as its own).
    pub producer_name: String,
    pub producer_nif: String,
    /// `NumeroInstalacion`: the store node.
    pub installation: String,
}

/// `<sum:RegFactuSistemaFacturacion>` for `records` (at most 1,000, in chain order);
/// `previous` is the record before the first one, for its `Encadenamiento`.
pub fn registration(
    system: &System,
    previous: Option<&InvoiceRecord>,
    records: &[InvoiceRecord],
) -> String {
    debug_assert!(records.len() <= RECORDS_PER_MESSAGE_MAX);
    let mut x = String::with_capacity(2_000 * records.len().max(1));
    x.push_str(&format!(
        "<sum:RegFactuSistemaFacturacion xmlns:sum=\"{NS_LR}\" xmlns:sum1=\"{NS_INFO}\">"
    ));
    if let Some(first) = records.first() {
        x.push_str("<sum:Cabecera><sum1:ObligadoEmision>");
        el(&mut x, "NombreRazon", &first.issuer_name);
        el(&mut x, "NIF", &first.issuer_nif);
        x.push_str("</sum1:ObligadoEmision></sum:Cabecera>");
    }
    let mut before = previous;
    for r in records {
        x.push_str("<sum:RegistroFactura>");
        match r.kind {
            RecordKind::Alta => alta(&mut x, system, before, r),
            RecordKind::Anulacion => anulacion(&mut x, system, before, r),
        }
        x.push_str("</sum:RegistroFactura>");
        before = Some(r);
    }
    x.push_str("</sum:RegFactuSistemaFacturacion>");
    x
}

fn alta(x: &mut String, system: &System, before: Option<&InvoiceRecord>, r: &InvoiceRecord) {
    x.push_str("<sum1:RegistroAlta>");
    el(x, "IDVersion", "1.0");
    x.push_str("<sum1:IDFactura>");
    el(x, "IDEmisorFactura", &r.issuer_nif);
    el(x, "NumSerieFactura", &r.numserie());
    el(x, "FechaExpedicionFactura", &r.fecha);
    x.push_str("</sum1:IDFactura>");
    el(x, "RefExterna", &r.reference);
    el(x, "NombreRazonEmisor", &r.issuer_name);
    el(x, "TipoFactura", r.tipo.as_str());
    if crate::domain::fiscal::chain::is_rectifying(r.tipo) {
        el(x, "TipoRectificativa", "I");
        if let Some(orig) = &r.rectifies {
            x.push_str("<sum1:FacturasRectificadas><sum1:IDFacturaRectificada>");
            el(x, "IDEmisorFactura", &r.issuer_nif);
            el(x, "NumSerieFactura", &orig.numserie);
            el(x, "FechaExpedicionFactura", &orig.fecha);
            x.push_str("</sum1:IDFacturaRectificada></sum1:FacturasRectificadas>");
        }
    }
    let description = if r.rectifies.is_some() || r.importe_cents < 0 {
        "Devolución en tienda"
    } else {
        "Venta en tienda"
    };
    el(x, "DescripcionOperacion", description);
    if let Some(nif) = &r.customer_tax_id {
        x.push_str("<sum1:Destinatarios><sum1:IDDestinatario>");
        el(x, "NombreRazon", nif);
        el(x, "NIF", nif);
        x.push_str("</sum1:IDDestinatario></sum1:Destinatarios>");
    }
    x.push_str("<sum1:Desglose>");
    for v in &r.vat {
        x.push_str("<sum1:DetalleDesglose>");
        el(x, "Impuesto", "01");
        el(x, "ClaveRegimen", "01");
        el(x, "CalificacionOperacion", "S1");
        el(x, "TipoImpositivo", &amount(i64::from(v.vat_bp)));
        el(x, "BaseImponibleOimporteNoSujeto", &amount(v.base_cents));
        el(x, "CuotaRepercutida", &amount(v.cuota_cents));
        x.push_str("</sum1:DetalleDesglose>");
    }
    x.push_str("</sum1:Desglose>");
    el(x, "CuotaTotal", &amount(r.cuota_cents));
    el(x, "ImporteTotal", &amount(r.importe_cents));
    chaining(x, before);
    tail(x, system, r);
    x.push_str("</sum1:RegistroAlta>");
}

fn anulacion(x: &mut String, system: &System, before: Option<&InvoiceRecord>, r: &InvoiceRecord) {
    x.push_str("<sum1:RegistroAnulacion>");
    el(x, "IDVersion", "1.0");
    x.push_str("<sum1:IDFactura>");
    el(x, "IDEmisorFacturaAnulada", &r.issuer_nif);
    el(x, "NumSerieFacturaAnulada", &r.numserie());
    el(x, "FechaExpedicionFacturaAnulada", &r.fecha);
    x.push_str("</sum1:IDFactura>");
    el(x, "RefExterna", &r.reference);
    chaining(x, before);
    tail(x, system, r);
    x.push_str("</sum1:RegistroAnulacion>");
}

fn chaining(x: &mut String, before: Option<&InvoiceRecord>) {
    x.push_str("<sum1:Encadenamiento>");
    match before {
        None => el(x, "PrimerRegistro", "S"),
        Some(p) => {
            x.push_str("<sum1:RegistroAnterior>");
            el(x, "IDEmisorFactura", &p.issuer_nif);
            el(x, "NumSerieFactura", &p.numserie());
            el(x, "FechaExpedicionFactura", &p.fecha);
            el(x, "Huella", &p.huella);
            x.push_str("</sum1:RegistroAnterior>");
        }
    }
    x.push_str("</sum1:Encadenamiento>");
}

fn tail(x: &mut String, system: &System, r: &InvoiceRecord) {
    x.push_str("<sum1:SistemaInformatico>");
    el(x, "NombreRazon", &system.producer_name);
    el(x, "NIF", &system.producer_nif);
    el(x, "NombreSistemaInformatico", "storenode");
    el(x, "IdSistemaInformatico", "SN");
    el(x, "Version", env!("CARGO_PKG_VERSION"));
    el(x, "NumeroInstalacion", &system.installation);
    el(x, "TipoUsoPosibleSoloVerifactu", "S");
    el(x, "TipoUsoPosibleMultiOT", "N");
    el(x, "IndicadorMultiplesOT", "N");
    x.push_str("</sum1:SistemaInformatico>");
    el(x, "FechaHoraHusoGenRegistro", &r.generated_at);
    el(x, "TipoHuella", "01");
    el(x, "Huella", &r.huella);
}

/// `<sum1:name>escaped value</sum1:name>`.
fn el(x: &mut String, name: &str, value: &str) {
    x.push_str("<sum1:");
    x.push_str(name);
    x.push('>');
    escape_into(x, value);
    x.push_str("</sum1:");
    x.push_str(name);
    x.push('>');
}

/// XML text escaping of the five special characters.
pub fn escape_into(x: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => x.push_str("&amp;"),
            '<' => x.push_str("&lt;"),
            '>' => x.push_str("&gt;"),
            '"' => x.push_str("&quot;"),
            '\'' => x.push_str("&apos;"),
            c => x.push(c),
        }
    }
}

//! Renders a decoded job as plain text and as a PNG image of the paper roll.
//!
//! The PNG uses an embedded 8x8 bitmap font (font8x8, Latin-1 included, plus a hand-drawn
//! euro sign) scaled to a 16x24-pixel cell for font A, so 48 columns make an 800-pixel roll.
//! QR codes are re-encoded from their data with the `qrcode` crate at the printed module size,
//! so the image scans like the paper would.

use super::decoder::{Item, Run, SIM_COLUMNS};
use crate::devices::escpos::Align;
use font8x8::UnicodeFonts;
use image::{GrayImage, Luma};

/// Pixels per character cell, horizontally, at size 1.
const CELL_W_PX: u32 = 16;
/// Pixels per character cell, vertically (glyph 16 + line spacing 8).
const CELL_H_PX: u32 = 24;
/// Paper margin on each side.
const MARGIN_PX: u32 = 16;
/// Pixels per printer dot (font A is 12 dots wide, drawn 16 pixels wide).
const PX_PER_DOT_NUM: u32 = 4;
const PX_PER_DOT_DEN: u32 = 3;
/// Quiet zone around a QR, in modules.
const QR_QUIET_MODULES: u32 = 4;
/// Height of the dashed cut mark.
const CUT_H_PX: u32 = 24;
/// Tallest image we draw, so a runaway job cannot exhaust memory.
const IMAGE_H_PX_MAX: u32 = 60_000;

const BLACK: Luma<u8> = Luma([0]);
const GREY: Luma<u8> = Luma([150]);

/// Euro sign, not in font8x8: one byte per row, bit 0 is the leftmost pixel.
const EURO_GLYPH: [u8; 8] = [0x38, 0x44, 0x1f, 0x02, 0x1f, 0x44, 0x38, 0x00];

/// The job as text: one line per printed line, aligned within [`SIM_COLUMNS`], with
/// bracketed markers for QR codes, barcodes, drawer kicks and cuts.
pub fn to_text(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        match item {
            Item::Line { align, runs } => {
                let text: String = runs.iter().map(|r| r.text.as_str()).collect();
                let cols: usize = runs
                    .iter()
                    .map(|r| r.text.chars().count() * usize::from(r.width))
                    .sum();
                let pad = match align {
                    Align::Left => 0,
                    Align::Center => SIM_COLUMNS.saturating_sub(cols) / 2,
                    Align::Right => SIM_COLUMNS.saturating_sub(cols),
                };
                let line = format!("{}{text}", " ".repeat(pad));
                out.push_str(line.trim_end());
            }
            Item::Qr { data, .. } => out.push_str(&format!("[QR {data}]")),
            Item::Barcode(data) => out.push_str(&format!("[BARCODE {data}]")),
            Item::DrawerKick { pin, on_ms } => {
                out.push_str(&format!("[DRAWER KICK pin {pin} {on_ms} ms]"))
            }
            Item::Cut => out.push_str("[CUT]"),
        }
        out.push('\n');
    }
    out
}

fn glyph(c: char) -> [u8; 8] {
    if c == '€' {
        return EURO_GLYPH;
    }
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::MISC_FONTS.get(c))
        .or_else(|| font8x8::BOX_FONTS.get(c))
        .or_else(|| font8x8::BLOCK_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

fn run_width_px(run: &Run) -> u32 {
    let chars = u32::try_from(run.text.chars().count()).unwrap_or(u32::MAX);
    chars.saturating_mul(CELL_W_PX * u32::from(run.width))
}

fn item_height_px(item: &Item) -> u32 {
    match item {
        Item::Line { runs, .. } => {
            CELL_H_PX * u32::from(runs.iter().map(|r| r.height).max().unwrap_or(1))
        }
        Item::Qr {
            data, module_dots, ..
        } => qr_matrix(data).map_or(CELL_H_PX, |(width, _)| {
            (width + 2 * QR_QUIET_MODULES) * module_px(*module_dots)
        }),
        Item::Barcode(_) | Item::DrawerKick { .. } => CELL_H_PX,
        Item::Cut => CUT_H_PX,
    }
}

fn module_px(module_dots: u8) -> u32 {
    (u32::from(module_dots) * PX_PER_DOT_NUM / PX_PER_DOT_DEN).max(1)
}

/// The QR symbol for `data` as (modules per side, dark flags row by row).
fn qr_matrix(data: &str) -> Option<(u32, Vec<bool>)> {
    let code =
        qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = u32::try_from(code.width()).ok()?;
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Some((width, dark))
}

/// The job as a grey-scale image of the paper roll.
pub fn to_png_image(items: &[Item]) -> GrayImage {
    let paper_w = 2 * MARGIN_PX + CELL_W_PX * SIM_COLUMNS as u32;
    let content_h: u32 = items
        .iter()
        .map(item_height_px)
        .fold(0, u32::saturating_add);
    let height = (content_h + 2 * MARGIN_PX).min(IMAGE_H_PX_MAX);
    let mut img = GrayImage::from_pixel(paper_w, height, Luma([255]));
    let mut y = MARGIN_PX;
    for item in items {
        let h = item_height_px(item);
        if y + h > height {
            break;
        }
        match item {
            Item::Line { align, runs } => draw_line(&mut img, y, *align, runs, h),
            Item::Qr {
                align,
                module_dots,
                data,
            } => draw_qr(&mut img, y, *align, *module_dots, data),
            Item::Barcode(data) => {
                draw_text(&mut img, MARGIN_PX, y, &format!("[BARCODE {data}]"), GREY)
            }
            Item::DrawerKick { .. } => draw_text(&mut img, MARGIN_PX, y, "[DRAWER KICK]", GREY),
            Item::Cut => {
                for x in (0..paper_w).step_by(12) {
                    for dx in 0..6 {
                        put(&mut img, x + dx, y + CUT_H_PX / 2, GREY);
                    }
                }
            }
        }
        y += h;
    }
    img
}

fn x_for(align: Align, content_w: u32, paper_w: u32) -> u32 {
    let room = (paper_w - 2 * MARGIN_PX).saturating_sub(content_w);
    MARGIN_PX
        + match align {
            Align::Left => 0,
            Align::Center => room / 2,
            Align::Right => room,
        }
}

fn draw_line(img: &mut GrayImage, y: u32, align: Align, runs: &[Run], line_h: u32) {
    let total: u32 = runs.iter().map(run_width_px).fold(0, u32::saturating_add);
    let mut x = x_for(align, total, img.width());
    for run in runs {
        let sx = 2 * u32::from(run.width);
        let sy = 2 * u32::from(run.height);
        // Baseline-align runs of different heights at the bottom of the line.
        let top = y + line_h - CELL_H_PX * u32::from(run.height) + 4 * u32::from(run.height);
        for c in run.text.chars() {
            draw_glyph(img, x, top, glyph(c), sx, sy, run.bold, BLACK);
            if run.underline {
                for dx in 0..8 * sx {
                    put(img, x + dx, top + 8 * sy + 1, BLACK);
                }
            }
            x += 8 * sx;
        }
    }
}

fn draw_text(img: &mut GrayImage, x: u32, y: u32, text: &str, colour: Luma<u8>) {
    for (i, c) in (0u32..).zip(text.chars()) {
        draw_glyph(img, x + i * CELL_W_PX, y + 4, glyph(c), 2, 2, false, colour);
    }
}

#[allow(clippy::too_many_arguments)] // reason: a pixel blitter; grouping would only obscure it
fn draw_glyph(
    img: &mut GrayImage,
    x: u32,
    y: u32,
    rows: [u8; 8],
    sx: u32,
    sy: u32,
    bold: bool,
    colour: Luma<u8>,
) {
    for (row, bits) in (0u32..).zip(rows) {
        for col in 0..8u32 {
            if bits & (1 << col) == 0 {
                continue;
            }
            let extra = u32::from(bold);
            for dy in 0..sy {
                for dx in 0..sx + extra {
                    put(img, x + col * sx + dx, y + row * sy + dy, colour);
                }
            }
        }
    }
}

fn draw_qr(img: &mut GrayImage, y: u32, align: Align, module_dots: u8, data: &str) {
    let Some((width, dark)) = qr_matrix(data) else {
        draw_text(img, MARGIN_PX, y, "[QR too long]", GREY);
        return;
    };
    let m = module_px(module_dots);
    let side = (width + 2 * QR_QUIET_MODULES) * m;
    let x0 = x_for(align, side, img.width()) + QR_QUIET_MODULES * m;
    let y0 = y + QR_QUIET_MODULES * m;
    for (i, is_dark) in (0u32..).zip(dark) {
        if !is_dark {
            continue;
        }
        let (mx, my) = (i % width, i / width);
        for dy in 0..m {
            for dx in 0..m {
                put(img, x0 + mx * m + dx, y0 + my * m + dy, BLACK);
            }
        }
    }
}

fn put(img: &mut GrayImage, x: u32, y: u32, colour: Luma<u8>) {
    if x < img.width() && y < img.height() {
        img.put_pixel(x, y, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rendering_centres_and_marks_devices() {
        let items = vec![
            Item::Line {
                align: Align::Center,
                runs: vec![Run {
                    text: "Año".into(),
                    bold: true,
                    underline: false,
                    width: 1,
                    height: 1,
                }],
            },
            Item::DrawerKick { pin: 2, on_ms: 100 },
            Item::Cut,
        ];
        let text = to_text(&items);
        assert_eq!(
            text,
            format!("{}Año\n[DRAWER KICK pin 2 100 ms]\n[CUT]\n", " ".repeat(22))
        );
        let img = to_png_image(&items);
        assert_eq!(img.width(), 800);
        assert!(img.pixels().any(|p| p.0[0] == 0));
    }

    #[test]
    fn every_cp858_letter_has_a_glyph() {
        for c in "áéíóúñÑüÜ¿¡çÇÁÉÍÓÚ€ºª".chars() {
            assert_ne!(glyph(c), glyph('?'), "{c}");
        }
    }
}

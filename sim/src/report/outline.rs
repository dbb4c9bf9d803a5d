//! SVG text as glyph outlines, so plots render the same in every viewer.
//!
//! plotters writes SVG text as `<text font-family="sans-serif">`: each
//! viewer then picks its own font, with its own glyph widths, and labels
//! drift out of the places plotters measured for them. [`OutlinedSvg`]
//! wraps plotters' SVG backend and records every text instead of writing
//! it; [`finish`] then draws each one from the outlines of DejaVu Sans,
//! the font embedded in the binary and used to measure the text: each
//! glyph used is defined once as a path (`<defs>`), and every text is a
//! group of `<use>` references to them, with the text itself as the
//! group's `<title>` (not drawn; for search and screen readers). No font
//! is needed to view the result.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontTransform,
};

/// One text plotters asked for.
#[derive(Debug, Clone)]
struct Text {
    text: String,
    pos: BackendCoord,
    size: f64,
    /// Horizontal anchor: -1 left, 0 centre, 1 right.
    h: i8,
    /// Vertical anchor: -1 top, 0 centre, 1 bottom.
    v: i8,
    rgb: (u8, u8, u8),
    alpha: f64,
    rotate: u32,
}

/// plotters' SVG backend, with text recorded for [`finish`].
pub struct OutlinedSvg<'a> {
    inner: SVGBackend<'a>,
    texts: Rc<RefCell<Vec<Text>>>,
}

/// The texts an [`OutlinedSvg`] recorded.
#[derive(Debug, Clone, Default)]
pub struct Texts(Rc<RefCell<Vec<Text>>>);

impl<'a> OutlinedSvg<'a> {
    /// An SVG of `size` pixels written into `buf`; its texts go to
    /// `texts`.
    pub fn new(buf: &'a mut String, size: (u32, u32), texts: &Texts) -> Self {
        OutlinedSvg {
            inner: SVGBackend::with_string(buf, size),
            texts: Rc::clone(&texts.0),
        }
    }
}

type Result<T> =
    std::result::Result<T, DrawingErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

impl DrawingBackend for OutlinedSvg<'_> {
    type ErrorType = <SVGBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<()> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<()> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<()> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<()> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<()> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<()> {
        self.inner.fill_polygon(vert, style)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<()> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let anchor = style.anchor();
        let rotate = match style.transform() {
            FontTransform::None => 0,
            FontTransform::Rotate90 => 90,
            FontTransform::Rotate180 => 180,
            FontTransform::Rotate270 => 270,
        };
        self.texts.borrow_mut().push(Text {
            text: text.to_owned(),
            pos,
            size: style.size(),
            h: match anchor.h_pos {
                HPos::Left => -1,
                HPos::Center => 0,
                HPos::Right => 1,
            },
            v: match anchor.v_pos {
                VPos::Top => -1,
                VPos::Center => 0,
                VPos::Bottom => 1,
            },
            rgb: color.rgb,
            alpha: color.alpha,
            rotate,
        });
        Ok(())
    }

    fn estimate_text_size<T: BackendTextStyle>(&self, text: &str, style: &T) -> Result<(u32, u32)> {
        self.inner.estimate_text_size(text, style)
    }
}

fn font() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(dejavu::sans::regular()).ok()
}

/// A glyph's outline as SVG path data, in font units with y pointing
/// down (TrueType outlines are whole font units: no rounding needed).
fn glyph_path(font: &FontRef<'_>, id: GlyphId) -> String {
    let Some(outline) = font.outline(id) else {
        return String::new();
    };
    let mut d = String::new();
    let mut last: Option<(f32, f32)> = None;
    let p = |pt: ab_glyph::Point| (pt.x, -pt.y);
    for curve in &outline.curves {
        let (start, rest): ((f32, f32), Vec<(f32, f32)>) = match curve {
            OutlineCurve::Line(a, b) => (p(*a), vec![p(*b)]),
            OutlineCurve::Quad(a, b, c) => (p(*a), vec![p(*b), p(*c)]),
            OutlineCurve::Cubic(a, b, c, e) => (p(*a), vec![p(*b), p(*c), p(*e)]),
        };
        if last != Some(start) {
            if last.is_some() {
                d.push('Z');
            }
            let _ = write!(d, "M{} {}", start.0, start.1);
        }
        let cmd = match rest.len() {
            1 => 'L',
            2 => 'Q',
            _ => 'C',
        };
        d.push(cmd);
        let coords: Vec<String> = rest.iter().map(|(x, y)| format!("{x} {y}")).collect();
        d.push_str(&coords.join(" "));
        last = rest.last().copied();
    }
    if last.is_some() {
        d.push('Z');
    }
    d
}

/// Escapes text for XML element content.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// Puts the recorded `texts` into `svg` as outlines. `prefix` makes the
/// glyph ids unique when several plots share one HTML page.
pub fn finish(svg: &str, texts: &Texts, prefix: &str) -> String {
    let texts = texts.0.borrow();
    let Some(font) = font() else {
        return svg.to_owned();
    };
    let units = font.height_unscaled();
    let cap = font
        .outline(font.glyph_id('H'))
        .map_or(font.ascent_unscaled() * 0.75, |o| {
            (o.bounds.max.y - o.bounds.min.y).abs()
        });
    let descent = font.descent_unscaled();
    let mut used: BTreeMap<u16, String> = BTreeMap::new();
    let mut body = String::new();
    for t in texts.iter() {
        // Advance widths and kerning, as plotters measured the text.
        let mut x = 0f32;
        let mut prev: Option<GlyphId> = None;
        let mut glyphs = Vec::new();
        for c in t.text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += font.kern_unscaled(p, id);
            }
            if font.outline(id).is_some() {
                used.entry(id.0).or_insert_with(|| glyph_path(&font, id));
                glyphs.push((id, x));
            }
            x += font.h_advance_unscaled(id);
            prev = Some(id);
        }
        let scale = t.size as f32 / units;
        let width = x * scale;
        let (x0, y0) = (t.pos.0 as f32, t.pos.1 as f32);
        let left = match t.h {
            -1 => x0,
            0 => x0 - width / 2.0,
            _ => x0 - width,
        };
        let baseline = match t.v {
            -1 => y0 + cap * scale + t.size as f32 * 0.1,
            0 => y0 + cap * scale / 2.0,
            _ => y0 + descent * scale,
        };
        let rotate = if t.rotate == 0 {
            String::new()
        } else {
            format!("rotate({} {} {}) ", t.rotate, t.pos.0, t.pos.1)
        };
        let opacity = if t.alpha < 1.0 {
            format!(" fill-opacity=\"{:.3}\"", t.alpha)
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<g transform=\"{rotate}translate({:.2} {:.2}) scale({:.5})\" fill=\"{}\"{opacity}>",
            left,
            baseline,
            scale,
            hex(t.rgb)
        );
        // The text itself, for search, copy and screen readers; a title is
        // not drawn.
        let _ = write!(body, "<title>{}</title>", escape(&t.text));
        for (id, gx) in glyphs {
            let _ = write!(body, "<use xlink:href=\"#{prefix}-g{}\" x=\"{gx}\"/>", id.0);
        }
        body.push_str("</g>\n");
    }
    let mut defs = String::from("<defs>\n");
    for (id, d) in &used {
        let _ = writeln!(defs, "<path id=\"{prefix}-g{id}\" d=\"{d}\"/>");
    }
    defs.push_str("</defs>\n");
    let root = svg.replacen(
        "xmlns=\"http://www.w3.org/2000/svg\"",
        "xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\"",
        1,
    );
    match root.rfind("</svg>") {
        Some(end) => format!("{}{defs}{body}{}", &root[..end], &root[end..]),
        None => root,
    }
}

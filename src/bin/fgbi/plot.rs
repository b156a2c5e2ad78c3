//! Hand-written SVG line charts, one line per method: bytes sent per epoch (log scale), and
//! effective rate against link rate (log-log).

use std::fmt::Write;

const COLORS: [&str; 8] = [
    "#888888", "#bcbd22", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A power of ten of bytes in decimal units: 1 kB, 10 MB, ...
fn human(exp: i32) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let u = (exp.max(0) / 3) as usize;
    let u = u.min(units.len() - 1);
    format!("{} {}", 10u64.pow((exp - 3 * u as i32) as u32), units[u])
}

/// The start of an SVG document: white background, a title.
fn open(w: f64, h: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    s
}

/// One legend entry: a short line in the method's colour and its name.
fn legend(s: &mut String, lx: f64, ly: f64, color: &str, name: &str) {
    legend_styled(s, lx, ly, color, "", name)
}

/// A legend entry with extra attributes for its line (`stroke-dasharray=...`).
fn legend_styled(s: &mut String, lx: f64, ly: f64, color: &str, attrs: &str, name: &str) {
    let _ = writeln!(
        s,
        r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"{attrs}/><text x="{}" y="{}">{}</text>"#,
        lx + 20.0,
        lx + 26.0,
        ly + 4.0,
        esc(name)
    );
}

/// The bytes-per-epoch chart as an SVG document. `series` are (name, bytes per epoch).
pub fn svg(title: &str, series: &[(&str, &[u64])]) -> String {
    let (w, h) = (900.0, 520.0);
    let (l, r, t, b) = (80.0, 150.0, 40.0, 50.0);
    let pw = w - l - r;
    let ph = h - t - b;
    let epochs = series.iter().map(|s| s.1.len()).max().unwrap_or(0).max(1);
    let max = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let min = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .filter(|&v| v > 0)
        .min()
        .unwrap_or(1) as f64;
    let lo_exp = min.log10().floor().max(0.0);
    let hi_exp = max.log10().ceil().max(lo_exp + 1.0);
    let y = |v: u64| {
        let lv = (v.max(1) as f64).log10().clamp(lo_exp, hi_exp);
        t + ph - (lv - lo_exp) / (hi_exp - lo_exp) * ph
    };
    let x = |e: usize| {
        if epochs == 1 {
            l + pw / 2.0
        } else {
            l + e as f64 / (epochs - 1) as f64 * pw
        }
    };
    let mut s = open(w, h, title);
    // y grid: powers of ten
    let mut ex = lo_exp;
    while ex <= hi_exp {
        let yy = t + ph - (ex - lo_exp) / (hi_exp - lo_exp) * ph;
        let _ = writeln!(
            s,
            "<line x1=\"{l}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>",
            l + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            l - 6.0,
            yy + 4.0,
            human(ex as i32)
        );
        ex += 1.0;
    }
    // x axis
    let step = (epochs / 20).max(1);
    for e in (0..epochs).step_by(step) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{e}</text>"#,
            x(e),
            t + ph + 18.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
        l + pw / 2.0,
        h - 10.0
    );
    let _ = writeln!(
        s,
        r#"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    for (i, (name, vals)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(e, &v)| format!("{:.1},{:.1}", x(e), y(v)))
            .collect();
        let width = if *name == "fgbi" { 3.0 } else { 1.5 };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="{width}" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap();
            let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="2.5" fill="{c}"/>"#);
        }
        legend(&mut s, l + pw + 12.0, t + 10.0 + i as f64 * 20.0, c, name);
    }
    s.push_str("</svg>\n");
    s
}

/// A number of Gbit/s for an axis label: `0.1`, `2.5`, `100`.
fn gbps_label(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Log-scale axis: powers of ten from below the smallest to above the largest value.
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(vals: impl Iterator<Item = f64>) -> LogAxis {
        let (mut min, mut max) = (f64::INFINITY, 0f64);
        for v in vals.filter(|v| v.is_finite() && *v > 0.0) {
            min = min.min(v);
            max = max.max(v);
        }
        if max == 0.0 {
            (min, max) = (1.0, 1.0);
        }
        let lo = min.log10().floor();
        let hi = max.log10().ceil().max(lo + 1.0);
        LogAxis { lo, hi }
    }
    /// Where `v` falls, 0 (lo) to 1 (hi).
    fn frac(&self, v: f64) -> f64 {
        let lv = v.max(1e-300).log10().clamp(self.lo, self.hi);
        (lv - self.lo) / (self.hi - self.lo)
    }
    fn decades(&self) -> impl Iterator<Item = f64> {
        let (lo, hi) = (self.lo as i32, self.hi as i32);
        (lo..=hi).map(|e| 10f64.powi(e))
    }
}

/// The ship chart as an SVG document: effective rate (Gbit/s of dirty memory per second of ship
/// time) against link rate, log-log, one line per method; `series` are (name, effective rate at
/// each of `links`). A dashed diagonal marks effective rate = link rate.
pub fn ship_svg(title: &str, links: &[f64], series: &[(String, Vec<f64>)]) -> String {
    let (w, h) = (900.0, 560.0);
    let (l, r, t, b) = (80.0, 150.0, 40.0, 60.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let xa = LogAxis::new(links.iter().copied());
    let ya = LogAxis::new(
        series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .chain(links.iter().copied()),
    );
    let x = |v: f64| l + xa.frac(v) * pw;
    let y = |v: f64| t + ph - ya.frac(v) * ph;
    let mut s = open(w, h, title);
    for v in ya.decades() {
        let yy = y(v);
        let _ = writeln!(
            s,
            "<line x1=\"{l}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>",
            l + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            l - 6.0,
            yy + 4.0,
            gbps_label(v)
        );
    }
    for &v in links {
        let xx = x(v);
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{t}\" x2=\"{xx:.1}\" y2=\"{}\" stroke=\"#eee\"/>",
            t + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"#,
            t + ph + 18.0,
            gbps_label(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">link rate, Gbit/s (log scale)</text>"#,
        l + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{0}" text-anchor="middle" transform="rotate(-90 18 {0})">effective rate = dirty memory / ship time, Gbit/s (log scale)</text>"#,
        t + ph / 2.0
    );
    let _ = writeln!(
        s,
        r#"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    if let (Some(&a), Some(&z)) = (links.first(), links.last()) {
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"6 4\"/>",
            x(a),
            y(a),
            x(z),
            y(z)
        );
    }
    for (i, (name, vals)) in series.iter().enumerate() {
        let (c, width, dash) = match name.as_str() {
            "fgbi-adapted" => ("#d62728", 3.0, ""),
            n if n.starts_with("fgbi") => ("#17becf", 2.0, r#" stroke-dasharray="8 4""#),
            _ => (COLORS[i % 6], 1.5, ""),
        };
        let pts: Vec<(f64, f64)> = links
            .iter()
            .zip(vals)
            .map(|(&k, &v)| (x(k), y(v)))
            .collect();
        let list: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="{width}"{dash} points="{}"><title>{}</title></polyline>"#,
            list.join(" "),
            esc(name)
        );
        for (px, py) in &pts {
            let _ = writeln!(s, r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{c}"/>"#);
        }
        legend_styled(
            &mut s,
            l + pw + 12.0,
            t + 10.0 + i as f64 * 20.0,
            c,
            dash,
            name,
        );
    }
    let ly = t + 10.0 + series.len() as f64 * 20.0;
    legend_styled(
        &mut s,
        l + pw + 12.0,
        ly,
        "#999",
        r#" stroke-dasharray="6 4""#,
        "= link rate",
    );
    s.push_str("</svg>\n");
    s
}

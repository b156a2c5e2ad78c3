//! A hand-written SVG line chart: bytes sent per epoch, one line per method, log scale.

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

/// The chart as an SVG document. `series` are (name, bytes per epoch).
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
        let ly = t + 10.0 + i as f64 * 20.0;
        let lx = l + pw + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

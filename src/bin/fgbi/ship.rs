//! Ship time: how long the dirty memory of a run takes to reach the backup over a link, with
//! encoding, the link and decoding pipelined, one core a side:
//! `ship = max(encode seconds, bytes sent / link rate, decode seconds)` (see docs/cli.md).

use crate::eval::MethodTotals;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The link rates of `--links` by default, in Gbit/s.
pub const DEFAULT_LINKS: &str = "0.1,1,2.5,10,25,100";

/// Link rates in Gbit/s, ascending, without repeats (`--links`).
#[derive(Debug, Clone, PartialEq)]
pub struct Links(pub Vec<f64>);

/// Parses one link rate in Gbit/s: a finite number above 0.
pub fn parse_link(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("bad link rate {t:?}: not a number (Gbit/s, e.g. 2.5)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!(
            "bad link rate {t:?}: must be a number of Gbit/s above 0"
        ));
    }
    Ok(v)
}

/// Parses a comma-separated list of link rates in Gbit/s, or `none` (no ship-time table).
pub fn parse_links(s: &str) -> Result<Links, String> {
    if s.trim() == "none" {
        return Ok(Links(Vec::new()));
    }
    let mut v = s
        .split(',')
        .map(parse_link)
        .collect::<Result<Vec<_>, _>>()?;
    v.sort_by(f64::total_cmp);
    v.dedup();
    Ok(Links(v))
}

/// A link rate in Gbit/s as bytes per second (10^9 bits per Gbit).
pub fn bytes_per_second(gbps: f64) -> f64 {
    gbps * 1e9 / 8.0
}

/// What the model needs of a method's run.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub bytes: u64,
    pub encode: f64,
    pub decode: f64,
}

impl From<&MethodTotals> for Cost {
    fn from(t: &MethodTotals) -> Cost {
        Cost {
            bytes: t.bytes_sent,
            encode: t.encode_seconds,
            decode: t.decode_seconds,
        }
    }
}

/// Which stage of the pipeline takes longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Encode,
    Link,
    Decode,
}

impl Bound {
    fn letter(self) -> char {
        match self {
            Bound::Encode => 'e',
            Bound::Link => 'l',
            Bound::Decode => 'd',
        }
    }
}

impl Cost {
    /// Ship seconds over a link of `gbps` Gbit/s and the stage that bounds them.
    pub fn ship(&self, gbps: f64) -> (f64, Bound) {
        let link = self.bytes as f64 / bytes_per_second(gbps);
        let mut best = (link, Bound::Link);
        for (s, b) in [(self.encode, Bound::Encode), (self.decode, Bound::Decode)] {
            if s > best.0 {
                best = (s, b);
            }
        }
        best
    }
}

/// Dirty memory shipped per second, in Gbit/s (the link's unit).
pub fn effective_gbps(dirty_bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        dirty_bytes as f64 * 8.0 / seconds / 1e9
    } else {
        f64::INFINITY
    }
}

/// One method at one link rate.
#[derive(Debug, Clone)]
pub struct Cell {
    pub method: String,
    pub cost: Cost,
    pub seconds: f64,
    pub bound: Bound,
}

/// Every method at one link rate.
#[derive(Debug, Clone)]
pub struct Row {
    pub link_gbps: f64,
    pub cells: Vec<Cell>,
}

/// The row name of libfgbi adapted to each link.
pub const ADAPTED: &str = "fgbi-adapted";

/// Whether a method is one of libfgbi's rows (not a baseline).
fn is_fgbi(method: &str) -> bool {
    method.starts_with("fgbi")
}

impl Row {
    /// `methods` are (name, cost) in table order.
    pub fn new(link_gbps: f64, methods: &[(String, Cost)]) -> Row {
        let cells = methods
            .iter()
            .map(|(m, c)| {
                let (seconds, bound) = c.ship(link_gbps);
                Cell {
                    method: m.clone(),
                    cost: *c,
                    seconds,
                    bound,
                }
            })
            .collect();
        Row { link_gbps, cells }
    }

    fn min_by(&self, keep: impl Fn(&Cell) -> bool) -> Option<&Cell> {
        self.cells
            .iter()
            .filter(|c| keep(c))
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
    }

    /// The fastest method of all (libfgbi's rows included).
    pub fn fastest(&self) -> Option<&Cell> {
        self.min_by(|_| true)
    }

    /// The fastest baseline.
    pub fn best_baseline(&self) -> Option<&Cell> {
        self.min_by(|c| !is_fgbi(&c.method))
    }

    pub fn cell(&self, method: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.method == method)
    }

    /// A method's ship time over the fastest baseline's (below 1: it ships sooner).
    pub fn vs_best_baseline(&self, method: &str) -> Option<f64> {
        let b = self.best_baseline()?;
        Some(self.cell(method)?.seconds / b.seconds)
    }
}

/// One row's JSON object: `{"link_gbps": L, "seconds": {method: s}, ...}`; `adapted` is the
/// JSON of the libfgbi run adapted to this link.
pub fn row_json(r: &Row, dirty_bytes: u64, default_name: &str, adapted: Value) -> Value {
    let per = |f: &dyn Fn(&Cell) -> Value| {
        r.cells
            .iter()
            .map(|c| (c.method.clone(), f(c)))
            .collect::<Map<String, Value>>()
    };
    json!({
        "link_gbps": r.link_gbps,
        "seconds": per(&|c| c.seconds.into()),
        "effective_gbps": per(&|c| effective_gbps(dirty_bytes, c.seconds).into()),
        "bound": per(&|c| serde_json::to_value(c.bound).unwrap()),
        "bytes_sent": per(&|c| c.cost.bytes.into()),
        "fastest": r.fastest().map(|c| c.method.clone()),
        "best_baseline": r.best_baseline().map(|c| c.method.clone()),
        "fgbi_adapted_vs_best_baseline": r.vs_best_baseline(ADAPTED),
        "fgbi_default_vs_best_baseline": r.vs_best_baseline(default_name),
        "fgbi_adapted": adapted,
    })
}

/// Seconds with about three significant digits.
fn secs(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0}")
    } else if s >= 10.0 {
        format!("{s:.1}")
    } else if s >= 1.0 {
        format!("{s:.2}")
    } else if s >= 0.1 {
        format!("{s:.3}")
    } else {
        format!("{s:.4}")
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

/// Column width of a method column.
fn width(rows: &[Row]) -> usize {
    rows.iter()
        .flat_map(|r| r.cells.iter())
        .map(|c| c.method.len())
        .max()
        .unwrap_or(0)
        .max(10)
}

fn header(rows: &[Row], w: usize, extra: &str) {
    print!("{:>6}", "Gbit/s");
    for c in &rows[0].cells {
        print!(" {:>w$}", c.method);
    }
    println!("{extra}");
}

/// The ship-time tables: seconds (with the bounding stage and the fastest marked), then the
/// effective rate.
pub fn print(rows: &[Row], dirty_bytes: u64, default_name: &str) {
    if rows.is_empty() {
        return;
    }
    let w = width(rows);
    println!(
        "ship time, seconds: max(encode, bytes sent / link, decode), one core a side; bound: e encode, l link, d decode; * fastest"
    );
    header(
        rows,
        w,
        &format!(
            " {:>12} {:>13} {:>13}",
            "fastest", "adapted/best", "default/best"
        ),
    );
    for r in rows {
        print!("{:>6}", r.link_gbps);
        let fastest = r.fastest().map(|c| c.method.as_str());
        for c in &r.cells {
            let star = if Some(c.method.as_str()) == fastest {
                "*"
            } else {
                " "
            };
            let cell = format!("{} {}{star}", secs(c.seconds), c.bound.letter());
            print!(" {cell:>w$}");
        }
        println!(
            " {:>12} {:>13} {:>13}",
            fastest.unwrap_or("-"),
            ratio(r.vs_best_baseline(ADAPTED)),
            ratio(r.vs_best_baseline(default_name))
        );
    }
    println!("(adapted/best, default/best: libfgbi's ship time over the fastest baseline's; below 1 it ships sooner)");
    println!();
    println!("effective rate, Gbit/s of dirty memory: dirty bytes / ship time");
    header(rows, w, "");
    for r in rows {
        print!("{:>6}", r.link_gbps);
        for c in &r.cells {
            print!(
                " {:>w$}",
                format!("{:.3}", effective_gbps(dirty_bytes, c.seconds))
            );
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse() {
        assert_eq!(
            parse_links(DEFAULT_LINKS),
            Ok(Links(vec![0.1, 1.0, 2.5, 10.0, 25.0, 100.0]))
        );
        assert_eq!(parse_links("10, 1,10"), Ok(Links(vec![1.0, 10.0])));
        assert_eq!(parse_links("none"), Ok(Links(vec![])));
        for bad in ["0", "-1", "x", "1,,2", "", "inf", "NaN", "1,0"] {
            assert!(parse_links(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_slowest_stage_bounds() {
        let c = Cost {
            bytes: 125_000_000,
            encode: 0.5,
            decode: 0.25,
        };
        // 1 Gbit/s: 125 MB take 1 s on the link
        assert_eq!(c.ship(1.0), (1.0, Bound::Link));
        assert_eq!(c.ship(10.0), (0.5, Bound::Encode));
        let d = Cost { decode: 2.0, ..c };
        assert_eq!(d.ship(1.0), (2.0, Bound::Decode));
        assert!((effective_gbps(125_000_000, 1.0) - 1.0).abs() < 1e-12);
        let r = Row::new(
            10.0,
            &[
                ("raw".into(), d),
                ("fgbi-adapted".into(), c),
                ("lz4".into(), c),
            ],
        );
        assert_eq!(r.fastest().unwrap().method, "fgbi-adapted");
        assert_eq!(r.best_baseline().unwrap().method, "lz4");
        assert_eq!(r.vs_best_baseline(ADAPTED), Some(1.0));
    }
}

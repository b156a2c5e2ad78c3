//! `fgbi`: evaluate libfgbi against baselines on memory traces, record traces from processes,
//! encode traces into frame streams and decode them. See docs/cli.md.

#[path = "fgbi/baselines.rs"]
mod baselines;
#[path = "fgbi/codec.rs"]
mod codec;
#[path = "fgbi/eval.rs"]
mod eval;
#[path = "fgbi/opts.rs"]
mod opts;
#[path = "fgbi/plot.rs"]
mod plot;
#[path = "fgbi/progress.rs"]
mod progress;
#[path = "fgbi/record.rs"]
mod record;
#[path = "fgbi/trace.rs"]
mod trace;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "fgbi",
    version,
    about = "libfgbi's command-line tool: eval, record, encode, decode"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run libfgbi and the baselines (raw, zero+raw, xbzrle, zlib-1, lz4, zstd-1) on a trace,
    /// verify libfgbi's replica, print sizes and speeds.
    Eval(eval::EvalArgs),
    /// Record a trace from a running process (or a command started here) via /proc/PID/mem.
    Record(record::RecordArgs),
    /// Encode a trace into a stream of length-prefixed frames.
    Encode(codec::EncodeArgs),
    /// Apply a stream of frames onto a base image.
    Decode(codec::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Eval(a) => eval::run(a).map(|ok| if ok { 0 } else { 1 }),
        Cmd::Record(a) => record::run(a).map(|_| 0),
        Cmd::Encode(a) => codec::encode(a).map(|_| 0),
        Cmd::Decode(a) => codec::decode(a).map(|_| 0),
    };
    match r {
        Ok(0) => ExitCode::SUCCESS,
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("fgbi: {e}");
            ExitCode::from(1)
        }
    }
}

//! `gen_contacts`: writes the contact files of the benchmarks (a CRM's
//! nightly export, a chosen share of rows each breaking one rule; see
//! `bench/gen/contacts.rs` for what the file holds and why), or prints what
//! dropfeed must report for one.
//!
//!     cargo run --release --example gen_contacts -- --rows 1000000 --invalid 0.03 --seed 7 --out f.csv
//!     gen_contacts --rows 1000 --invalid 0.05 --encoding cp1252 --crlf --out f.csv
//!     gen_contacts --rows 1000 --start 500 --seed 8 --out g.csv
//!         rows 500..1499: the addresses of rows 500..999 of a file made with
//!         --start 0, their other cells drawn afresh from the other seed: the
//!         second file of an upsert
//!     gen_contacts --rows 1000 --invalid 0.05 --seed 11 --expected
//!         writes no file: prints, as JSON on stdout, the counts dropfeed must
//!         report for the file these options make, imported with
//!         examples/mapping.yaml into an empty tenant:
//!         {"rejected": {code: n}, "rejected_total": n, "warnings_by_code": {code: n}, "rows": n}
//!
//! `--out -` (the default) writes the file to stdout.

#[path = "gen/contacts.rs"]
mod contacts;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Writes a generated contact file (semicolon-separated, 20 columns) for dropfeed's benchmarks")]
struct Args {
    /// Lines after the header.
    #[arg(long, default_value_t = 1000)]
    rows: u64,
    /// The index of the first row; row i's e-mail address depends on i alone.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// The share of rows that break one validation rule, from 0 to 1.
    #[arg(long, default_value_t = 0.02)]
    invalid: f64,
    /// The key of every cell but the e-mail address and the customer id.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = contacts::Encoding::Utf8)]
    encoding: contacts::Encoding,
    /// CRLF line ends.
    #[arg(long)]
    crlf: bool,
    /// The file to write, `-` for stdout.
    #[arg(long, default_value = "-")]
    out: String,
    /// Print the counts dropfeed must report (JSON) instead of writing the file.
    #[arg(long, conflicts_with = "out")]
    expected: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.invalid) {
        eprintln!("gen_contacts: --invalid must be between 0 and 1, got {}", args.invalid);
        return ExitCode::from(2);
    }
    let opts = contacts::Options {
        rows: args.rows,
        start: args.start,
        invalid: args.invalid,
        encoding: args.encoding,
        crlf: args.crlf,
        seed: args.seed,
    };
    let done = if args.expected {
        let json = serde_json::to_string(&contacts::expected(&opts)).expect("counts serialise");
        writeln!(std::io::stdout(), "{json}")
    } else if args.out == "-" {
        contacts::generate(&opts, std::io::stdout().lock()).map(drop)
    } else {
        std::fs::File::create(&args.out).and_then(|file| contacts::generate(&opts, file)).map(drop)
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_contacts: cannot write {}: {e}", if args.expected { "-" } else { &args.out });
            ExitCode::FAILURE
        }
    }
}

//! `reflexio-sim`: compare retry policies on a virtual clock. See `--help`
//! and sim/README.md.

fn main() {
    std::process::exit(reflexio_sim::cli::main());
}

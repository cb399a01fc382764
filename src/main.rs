use clap::Parser;

fn main() {
    let cli = codexport::cli::Cli::parse();
    std::process::exit(codexport::cli::run(cli));
}

use std::io::IsTerminal;

fn main() {
    if !std::io::stderr().is_terminal() {
        // Logs and scripts get each message on one line, not wrapped at 80 columns.
        let _ = miette::set_hook(Box::new(|_| {
            Box::new(miette::MietteHandlerOpts::new().width(400).build())
        }));
    }
    std::process::exit(codexport::run_cli());
}

//! What a long run says on stderr while it works: progress bars and one-line
//! notices, both shown only on a terminal so cron logs and pipes stay clean.
//! Reports themselves go to stdout through [`super::render`].

use std::io::IsTerminal;

/// True when progress bars and notices should be drawn (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr, hidden when stderr is not a terminal (cron, pipes).
pub fn progress_bar(len: u64, message: &str) -> indicatif::ProgressBar {
    if !interactive() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>16} [{bar:40.cyan/blue}] {pos}/{len} ({percent}%, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A one-line notice on stderr, shown only on a terminal.
pub fn notice(message: &str) {
    if interactive() {
        eprintln!("{message}");
    }
}

//! What a spreadsheet does to a CSV cell: a cell that begins, after any
//! spaces, with `=`, `+`, `-` or `@`, or that begins with a tab or a
//! carriage return, may be evaluated as a formula when the file is opened
//! (`=HYPERLINK(...)`, `-1+cmd|...`, `@SUM(...)`). Every CSV the product
//! writes (exports, rejects files, templates) puts an apostrophe before such
//! a cell, which spreadsheets show as text; the import removes it again, so
//! that a file written by dropfeed imports back unchanged.

/// Whether a spreadsheet could read `cell` as a formula. A sign alone
/// (`-`, the placeholder of an empty name) is text to every spreadsheet.
pub fn could_evaluate(cell: &str) -> bool {
    let t = cell.trim_start();
    cell.starts_with(['\t', '\r', '\n'])
        || t.starts_with('=')
        || (t.starts_with(['+', '-', '@']) && t.chars().nth(1).is_some())
}

/// `cell`, with an apostrophe before it when a spreadsheet could evaluate it.
pub fn neutralise(cell: &str) -> String {
    if could_evaluate(cell) { format!("'{cell}") } else { cell.to_owned() }
}

/// `cell` without the apostrophe `neutralise` put before it, if it did.
pub fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if could_evaluate(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_a_spreadsheet_evaluates_gets_an_apostrophe_that_the_import_removes() {
        for formula in
            ["=HYPERLINK(\"x\")", "+41 79", "-1+1", "@SUM(A1)", "@ x", " =1+1", "  -2", "\t=1", "\r=1", "\tx"]
        {
            let written = neutralise(formula);
            assert_eq!(written, format!("'{formula}"), "{formula:?}");
            assert_eq!(unneutralise(&written), formula, "{formula:?}");
        }
        for text in ["Jean", "jean@x.ch", "'quoted", "a=b", "-", " +", ""] {
            assert_eq!(neutralise(text), text);
            assert_eq!(unneutralise(text), text);
        }
    }
}

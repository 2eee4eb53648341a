//! Case-insensitive substring search that behaves the same on every backend.
//!
//! Invariant: searched text is folded here, in Rust, both when it is
//! stored (the `search_*` columns) and when it is searched for, so a match
//! never depends on the database's `lower()`: SQLite's folds ASCII only,
//! PostgreSQL's depends on the cluster's locale (`C` folds ASCII only).

/// The one case folding of searched text: Unicode lower case, except that
/// Greek final sigma folds like any sigma. (`to_lowercase` picks `ς` or `σ`
/// by the letter's place in a word, so "ΟΔΥΣΣ" would lower to "οδυσς" and
/// miss "Οδυσσέας": a substring needs a fold that ignores context.)
pub fn fold(text: &str) -> String {
    text.to_lowercase().replace('ς', "σ")
}

/// `%needle%` for `LIKE … ESCAPE '\'`, with the needle folded and its
/// wildcards and escape character taken literally.
pub fn contains_pattern(needle: &str) -> String {
    let folded = fold(needle);
    let mut pattern = String::with_capacity(folded.len().saturating_add(2));
    pattern.push('%');
    for ch in folded.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// Whether a trigram index can narrow a `LIKE '%needle%'`: it needs a run of
/// at least 3 characters that are not wildcards, or it scans everything.
pub fn trigram_selective(needle: &str) -> bool {
    let mut run = 0usize;
    for ch in needle.chars() {
        if matches!(ch, '%' | '_') {
            run = 0;
        } else {
            run = run.saturating_add(1);
            if run >= 3 {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;

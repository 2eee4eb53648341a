use super::*;

#[test]
fn folding_is_unicode_lower_case() {
    assert_eq!(fold("ÉTÉ Ölkanne MÜLLER"), "été ölkanne müller");
    assert_eq!(fold("ΟΔΥΣΣΕΥΣ"), "οδυσσευσ");
    assert_eq!(
        fold("ΟΔΥΣΣ"),
        fold("Οδυσσέας").get(..10).unwrap_or_default()
    );
    assert_eq!(fold("Ὀδυσσεύς"), fold("ὈΔΥΣΣΕΎΣ"));
}

#[test]
fn the_pattern_folds_and_escapes_wildcards_and_the_escape() {
    assert_eq!(contains_pattern("A%b_C\\d"), "%a\\%b\\_c\\\\d%");
    assert_eq!(contains_pattern("Plain"), "%plain%");
    assert_eq!(contains_pattern("ÜLL"), "%üll%");
}

#[test]
fn trigram_search_needs_three_literal_characters_in_a_row() {
    assert!(trigram_selective("abc"));
    assert!(trigram_selective("x_abc"));
    assert!(!trigram_selective("ab"));
    assert!(!trigram_selective("a%b_c"));
    assert!(!trigram_selective("50%"));
    assert!(trigram_selective("ßéü"));
}

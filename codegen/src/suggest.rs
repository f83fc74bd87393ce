//! "Did you mean …?": the closest candidate by edit distance, the one rule every hint of the
//! generator uses (names in expressions, fields, methods, services, messages).

/// The candidate closest to `name`, when it is close enough to be a likely typo.
///
/// A candidate that differs only in case or underscores (`authorId` for `author_id`) always
/// counts; otherwise the edit distance must be at most a third of the name's length (and at
/// least 1 is allowed), so `autor_id` finds `author_id` but `x` does not find `id`.
pub(crate) fn closest<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let normalized = normalize(name);
    let limit = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = if normalize(candidate) == normalized {
            0
        } else if name.chars().count().abs_diff(candidate.chars().count()) > limit {
            continue;
        } else {
            levenshtein(name, candidate)
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Like [`closest`], over owned names.
pub(crate) fn suggest(name: &str, candidates: &[String]) -> Option<String> {
    closest(name, candidates.iter().map(String::as_str)).map(str::to_owned)
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Edit distance over `char`s: insertions, deletions, substitutions and swaps of two
/// neighbours (`szie` → `size`) all cost 1 (optimal string alignment distance).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between the first i chars of a and the first j chars of b.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("autor_id", "author_id"), 1);
        assert_eq!(levenshtein("héllo", "hello"), 1);
        assert_eq!(levenshtein("szie", "size"), 1);
        assert_eq!(levenshtein("ab", "ba"), 1);
    }

    #[test]
    fn suggestions() {
        let fields = ["author_id", "rating", "body"];
        assert_eq!(closest("autor_id", fields), Some("author_id"));
        assert_eq!(closest("authorId", fields), Some("author_id"));
        assert_eq!(closest("ratign", fields), Some("rating"));
        assert_eq!(closest("x", fields), None);
        assert_eq!(
            closest("rating", fields),
            None,
            "an exact match is not a suggestion"
        );
    }
}

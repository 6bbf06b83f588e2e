//! A unified line diff, for `plan --diff`: what a stack's redeploy would change against what
//! the cluster recorded as deployed. Rendered stacks are small, so the plain longest-common-
//! subsequence table is fast enough and keeps this short.

/// Lines of context around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// `old` to `new` as unified-diff hunks (`@@ -a,b +c,d @@`), with `---`/`+++` headers naming
/// them; empty when the texts are equal.
pub fn unified(old_name: &str, old: &str, new_name: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let script = edit_script(&a, &b);
    if script.iter().all(|(op, _, _)| *op == Op::Same) {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let changed: Vec<usize> =
        script.iter().enumerate().filter(|(_, (op, _, _))| *op != Op::Same).map(|(i, _)| i).collect();
    // Group changes whose contexts touch into one hunk.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        let start = i.saturating_sub(CONTEXT);
        let end = (i + CONTEXT + 1).min(script.len());
        match groups.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => groups.push((start, end)),
        }
    }
    for (start, end) in groups {
        let hunk = &script[start..end];
        let (a_start, b_start) = (hunk[0].1, hunk[0].2);
        let a_len = hunk.iter().filter(|(op, _, _)| *op != Op::Added).count();
        let b_len = hunk.iter().filter(|(op, _, _)| *op != Op::Removed).count();
        // An empty side is numbered from the line before it, as diff(1) does.
        let first = |start: usize, len: usize| if len == 0 { start } else { start + 1 };
        out.push_str(&format!(
            "@@ -{},{a_len} +{},{b_len} @@\n",
            first(a_start, a_len),
            first(b_start, b_len)
        ));
        for (op, ai, bi) in hunk {
            match op {
                Op::Same => out.push_str(&format!(" {}\n", a[*ai])),
                Op::Removed => out.push_str(&format!("-{}\n", a[*ai])),
                Op::Added => out.push_str(&format!("+{}\n", b[*bi])),
            }
        }
    }
    out
}

/// Each step with the index it is at in `a` and in `b`.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<(Op, usize, usize)> {
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut script = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            script.push((Op::Same, i, j));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals first on a tie: `-old` then `+new`, as people read a change.
            script.push((Op::Removed, i, j));
            i += 1;
        } else {
            script.push((Op::Added, i, j));
            j += 1;
        }
    }
    script
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a", "x\ny\n", "b", "x\ny\n"), "");
    }

    #[test]
    fn one_changed_line_with_context() {
        let old =
            "version: \"3.8\"\nservices:\n  web:\n    image: nginx:1.26\n    deploy:\n      replicas: 2\n";
        let new =
            "version: \"3.8\"\nservices:\n  web:\n    image: nginx:1.27\n    deploy:\n      replicas: 2\n";
        assert_eq!(
            unified("deployed", old, "inventory", new),
            "--- deployed\n+++ inventory\n@@ -1,6 +1,6 @@\n version: \"3.8\"\n services:\n   web:\n\
             -    image: nginx:1.26\n+    image: nginx:1.27\n     deploy:\n       replicas: 2\n"
        );
    }

    #[test]
    fn distant_changes_make_separate_hunks_and_new_files_are_all_added() {
        let old: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        let new = old.replace("line 2\n", "line two\n").replace("line 19\n", "line nineteen\n");
        let diff = unified("a", &old, "b", &new);
        assert_eq!(diff.matches("@@ ").count(), 2, "{diff}");
        assert!(diff.contains("@@ -1,5 +1,5 @@") && diff.contains("@@ -16,5 +16,5 @@"), "{diff}");
        let created = unified("a", "", "b", "x\ny\n");
        assert_eq!(created, "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n");
    }
}

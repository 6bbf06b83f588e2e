//! Debian package versions: dpkg's ordering (`dpkg --compare-versions`), and the glob patterns
//! (`26.1.*`) an inventory pins the engine with, as apt's own pins match them.

use std::cmp::Ordering;

/// Compares two Debian versions (`[EPOCH:]UPSTREAM[-REVISION]`) as dpkg does: epochs as
/// numbers, then upstream and revision part by part, where `~` sorts before everything, even
/// the end (`1.0~rc1` < `1.0`), letters before other characters, and digit runs as numbers.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| part(ua, ub)).then_with(|| part(ra, rb))
}

fn split(version: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The weight of a character outside a digit run; `None` is the end of the string.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_difference = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_difference == Ordering::Equal {
                first_difference = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}

/// Whether `version` matches `pattern`, where `*` stands for any run of characters and `?`
/// for one; anything else matches itself.
pub fn matches(pattern: &str, version: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some((b'*', rest)) => (0..=v.len()).any(|k| go(rest, &v[k..])),
            Some((b'?', rest)) => !v.is_empty() && go(rest, &v[1..]),
            Some((c, rest)) => v.first() == Some(c) && go(rest, &v[1..]),
        }
    }
    go(pattern.as_bytes(), version.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn orders_as_dpkg_does() {
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0a", "1.0", Greater),
            ("1.0+a", "1.0a", Greater),
            ("1.10", "1.9", Greater),
            ("1.010", "1.10", Equal),
            ("1:1.0", "2.0", Greater),
            ("2.0-1", "2.0-2", Less),
            ("2.0-10", "2.0-9", Greater),
            ("20.10.24+dfsg1-1+deb12u1", "20.10.24+dfsg1-1+deb12u1+lab1", Less),
            ("26.1.5+dfsg1-9+b1", "26.1.5+dfsg1-9", Greater),
            ("26.1.5+dfsg1-9", "20.10.24+dfsg1-1+deb12u1", Greater),
            ("5:27.3.1-1~debian.12~bookworm", "5:27.3.1-1~debian.12~bookworm", Equal),
            ("5:27.3.1-1~debian.12~bookworm", "5:28.0.0-1~debian.12~bookworm", Less),
            ("5:27.3.1-1~debian.12~bookworm", "26.1.5+dfsg1-9", Greater),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn globs_match_whole_versions() {
        assert!(matches("26.1.*", "26.1.5+dfsg1-9+b1"));
        assert!(!matches("26.1.*", "26.10.0-1"));
        assert!(matches("*", "1.0"));
        assert!(matches("5:27.?.*", "5:27.3.1-1~debian.12~bookworm"));
        assert!(!matches("20.10", "20.10.24+dfsg1-1"));
        assert!(matches("20.10.24+dfsg1-1+deb12u1", "20.10.24+dfsg1-1+deb12u1"));
    }
}

//! `Range` request header parsing and resolution (RFC 9110 §14).
//!
//! Only the `bytes` unit exists for a video. Parsing is strict about syntax and lenient about
//! semantics, as the RFC asks: a header that does not parse is *ignored* (the request is served
//! as if it had none), while a well-formed header none of whose ranges overlaps the video is
//! *unsatisfiable* (416).

/// One `byte-range-spec` or `suffix-byte-range-spec` of a `Range: bytes=...` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `a-b` (both inclusive).
    FromTo(u64, u64),
    /// `a-`: from `a` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// What a request's `Range` header asks of a representation of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No `Range` header, or one that must be ignored (malformed, or a unit other than bytes).
    Whole,
    /// The first satisfiable range: bytes `start..=end` (inclusive, `end < size`), before any
    /// length cap is applied.
    Satisfiable { start: u64, end: u64 },
    /// Well-formed, but no range overlaps the representation: answer 416.
    Unsatisfiable,
}

/// Parses the value of a `Range` header. `None` means "ignore the header" (RFC 9110 §14.2:
/// a server MAY ignore a Range it does not understand; a syntactically invalid one MUST be).
pub fn parse_range_header(value: &str) -> Option<Vec<RangeSpec>> {
    let value = value.trim();
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for part in set.split(',') {
        let part = part.trim();
        if part.is_empty() {
            // RFC 9110 allows empty list elements ("bytes=0-1,,5-6").
            continue;
        }
        let (first, last) = part.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let spec = match (first.is_empty(), last.is_empty()) {
            (true, true) => return None,
            (true, false) => RangeSpec::Suffix(parse_digits(last)?),
            (false, true) => RangeSpec::From(parse_digits(first)?),
            (false, false) => {
                let (a, b) = (parse_digits(first)?, parse_digits(last)?);
                if b < a {
                    // "a-b" with b < a is invalid syntax per RFC 9110 §14.1.1: ignore the header.
                    return None;
                }
                RangeSpec::FromTo(a, b)
            }
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        None
    } else {
        Some(specs)
    }
}

/// Digits only (no sign, no whitespace inside), no overflow.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves one spec against a representation of `size` bytes: `Some((start, end))` inclusive.
pub fn resolve_spec(spec: RangeSpec, size: u64) -> Option<(u64, u64)> {
    if size == 0 {
        return None;
    }
    match spec {
        RangeSpec::FromTo(a, b) if a < size => Some((a, b.min(size - 1))),
        RangeSpec::From(a) if a < size => Some((a, size - 1)),
        RangeSpec::Suffix(n) if n > 0 => Some((size - n.min(size), size - 1)),
        _ => None,
    }
}

/// Evaluates a request's `Range` header value (if any) against `size`.
///
/// Multi-range requests (`bytes=0-9,20-29`) are answered with their first satisfiable range
/// only, as a plain single-part 206: canvid never produces `multipart/byteranges` (browsers do
/// not send multi-range requests for media, and a multipart body could not be certified).
pub fn evaluate(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(specs) = header.and_then(parse_range_header) else {
        return RangeRequest::Whole;
    };
    specs
        .into_iter()
        .find_map(|spec| resolve_spec(spec, size))
        .map_or(RangeRequest::Unsatisfiable, |(start, end)| {
            RangeRequest::Satisfiable { start, end }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse_range_header("bytes=0-99"),
            Some(vec![RangeSpec::FromTo(0, 99)])
        );
        assert_eq!(
            parse_range_header("bytes=100-"),
            Some(vec![RangeSpec::From(100)])
        );
        assert_eq!(
            parse_range_header("bytes=-5"),
            Some(vec![RangeSpec::Suffix(5)])
        );
        assert_eq!(
            parse_range_header(" Bytes = 0-1, 5-, -3 "),
            Some(vec![
                RangeSpec::FromTo(0, 1),
                RangeSpec::From(5),
                RangeSpec::Suffix(3)
            ])
        );
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-1",
            "items=0-1",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=99999999999999999999-",
            "bytes 0-1",
        ] {
            assert_eq!(parse_range_header(bad), None, "{bad:?}");
            assert_eq!(evaluate(Some(bad), 10), RangeRequest::Whole, "{bad:?}");
        }
    }

    #[test]
    fn resolves_against_size() {
        let sat = |start, end| RangeRequest::Satisfiable { start, end };
        assert_eq!(evaluate(None, 10), RangeRequest::Whole);
        assert_eq!(evaluate(Some("bytes=0-"), 10), sat(0, 9));
        assert_eq!(evaluate(Some("bytes=2-4"), 10), sat(2, 4));
        assert_eq!(evaluate(Some("bytes=2-400"), 10), sat(2, 9));
        assert_eq!(evaluate(Some("bytes=9-"), 10), sat(9, 9));
        assert_eq!(evaluate(Some("bytes=-3"), 10), sat(7, 9));
        assert_eq!(evaluate(Some("bytes=-30"), 10), sat(0, 9));
        assert_eq!(evaluate(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=-0"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
        // First *satisfiable* range of a multi-range request.
        assert_eq!(evaluate(Some("bytes=50-60, 3-4"), 10), sat(3, 4));
        assert_eq!(evaluate(Some("bytes=1-2, 3-4"), 10), sat(1, 2));
    }
}

/// Property tests (issue 15): `proptest`, `PROPTEST_CASES` (or `CANVID_PROPTEST_CASES`) cases;
/// failing inputs are kept in `proptest-regressions/` next to this crate.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn cases() -> u32 {
        std::env::var("CANVID_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256)
    }

    /// An independent model of RFC 9110's `bytes` ranges: parse each element by hand, resolve
    /// against the size, take the first satisfiable one.
    fn model(header: Option<&str>, size: u64) -> RangeRequest {
        let Some(h) = header else {
            return RangeRequest::Whole;
        };
        let h = h.trim();
        let Some(eq) = h.find('=') else {
            return RangeRequest::Whole;
        };
        if !h[..eq].trim().eq_ignore_ascii_case("bytes") {
            return RangeRequest::Whole;
        }
        let num = |t: &str| -> Option<u64> {
            let t = t.trim();
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
                None
            } else {
                t.parse::<u64>().ok()
            }
        };
        let mut ranges = Vec::new();
        for el in h[eq + 1..].split(',') {
            let el = el.trim();
            if el.is_empty() {
                continue;
            }
            let Some(dash) = el.find('-') else {
                return RangeRequest::Whole;
            };
            let (a, b) = (&el[..dash], &el[dash + 1..]);
            let r = match (a.trim().is_empty(), b.trim().is_empty()) {
                (true, true) => return RangeRequest::Whole,
                (true, false) => match num(b) {
                    // Suffix: the last n bytes.
                    Some(n) => (n > 0 && size > 0).then(|| (size - n.min(size), size - 1)),
                    None => return RangeRequest::Whole,
                },
                (false, true) => match num(a) {
                    Some(x) => (x < size).then(|| (x, size - 1)),
                    None => return RangeRequest::Whole,
                },
                (false, false) => match (num(a), num(b)) {
                    (Some(x), Some(y)) if x <= y => (x < size).then(|| (x, y.min(size - 1))),
                    _ => return RangeRequest::Whole,
                },
            };
            ranges.push(r);
        }
        if ranges.is_empty() {
            return RangeRequest::Whole;
        }
        match ranges.into_iter().flatten().next() {
            Some((start, end)) => RangeRequest::Satisfiable { start, end },
            None => RangeRequest::Unsatisfiable,
        }
    }

    /// Headers close to valid ones: the unit, digits (some huge), dashes, commas, spaces and a
    /// few stray characters.
    fn header() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            (0u64..40).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            Just("18446744073709551616".to_string()),
            Just(String::new()),
        ];
        let element = prop_oneof![
            (number.clone(), number.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
            (number.clone(), " ?", number).prop_map(|(a, s, b)| format!("{a}{s}-{s}{b}")),
            "[0-9 +a-]{0,6}",
        ];
        let unit = prop_oneof![
            Just("bytes"),
            Just("Bytes"),
            Just(" BYTES "),
            Just("items"),
            Just(""),
        ];
        (unit, prop::collection::vec(element, 0..5), prop::bool::ANY).prop_map(|(unit, els, eq)| {
            format!("{unit}{}{}", if eq { "=" } else { " " }, els.join(","))
        })
    }

    fn size() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..50, any::<u64>(), Just(u64::MAX)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Never panics, answers inside the representation, agrees with the model.
        #[test]
        fn evaluate_agrees_with_the_model(h in header(), size in size()) {
            let got = evaluate(Some(&h), size);
            prop_assert_eq!(got, model(Some(&h), size), "header {:?} size {}", h, size);
            if let RangeRequest::Satisfiable { start, end } = got {
                prop_assert!(start <= end && end < size);
            }
            if size == 0 {
                prop_assert_ne!(got, RangeRequest::Satisfiable { start: 0, end: 0 });
            }
        }

        /// Arbitrary text (any Unicode) never panics, and is within bounds.
        #[test]
        fn arbitrary_text_never_panics(h in ".{0,40}", size in size()) {
            let got = evaluate(Some(&h), size);
            prop_assert_eq!(got, model(Some(&h), size));
            if let RangeRequest::Satisfiable { start, end } = got {
                prop_assert!(start <= end && end < size);
            }
        }

        /// Every spec the parser returns resolves inside the representation or not at all, and
        /// a header built from specs parses back to them.
        #[test]
        fn specs_round_trip_and_resolve_in_bounds(
            specs in prop::collection::vec(
                prop_oneof![
                    (any::<u64>(), any::<u64>())
                        .prop_map(|(a, b)| RangeSpec::FromTo(a.min(b), a.max(b))),
                    any::<u64>().prop_map(RangeSpec::From),
                    any::<u64>().prop_map(RangeSpec::Suffix),
                ],
                1..5,
            ),
            size in size(),
        ) {
            let text = specs
                .iter()
                .map(|s| match s {
                    RangeSpec::FromTo(a, b) => format!("{a}-{b}"),
                    RangeSpec::From(a) => format!("{a}-"),
                    RangeSpec::Suffix(n) => format!("-{n}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let header = format!("bytes={text}");
            prop_assert_eq!(parse_range_header(&header), Some(specs.clone()));
            for s in specs {
                if let Some((a, b)) = resolve_spec(s, size) {
                    prop_assert!(a <= b && b < size, "{:?} on {}", s, size);
                }
            }
        }
    }
}

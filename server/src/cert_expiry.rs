//! [`not_after`]: when an X.509 certificate (DER) stops being valid, for the
//! `raft3d_certificate_expiry_timestamp_seconds` gauge an alert watches (a node whose
//! certificate lapses is refused by every peer: docs/operations.md, "Certificates").
//!
//! A walk over the few DER fields before `validity` (RFC 5280 §4.1: version, serial,
//! signature algorithm, issuer), not a certificate parser: the certificate was already
//! parsed and verified by rustls when it was loaded; this only reads one date from it.
//!
//! Owns: reading that date. Must not touch: whether a certificate is trusted.

/// `notAfter` of the certificate `der`, in Unix seconds; `None` if it cannot be read.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (tbs, _) = element(certificate, SEQUENCE)?;
    let mut fields = tbs;
    if fields.first() == Some(&VERSION) {
        fields = element(fields, VERSION)?.1;
    }
    for _serial_algorithm_issuer in 0..3 {
        fields = any_element(fields)?.2;
    }
    let (validity, _) = element(fields, SEQUENCE)?;
    let (_, _, after_not_before) = any_element(validity)?;
    let (tag, time, _) = any_element(after_not_before)?;
    parse_time(tag, time)
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The content of the element at the start of `input` if its tag is `tag`, and what
/// follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = any_element(input)?;
    (found == tag).then_some((content, rest))
}

/// `(tag, content, rest)` of the element at the start of `input` (definite lengths only,
/// as DER has).
fn any_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = match first {
        short @ 0..=0x7f => (usize::from(short), rest),
        0x81..=0x84 => {
            let bytes = usize::from(first & 0x7f);
            let (digits, rest) = (rest.get(..bytes)?, rest.get(bytes..)?);
            let length = digits
                .iter()
                .fold(0usize, |n, &b| (n << 8) | usize::from(b));
            (length, rest)
        }
        _ => return None,
    };
    Some((tag, rest.get(..length)?, rest.get(length..)?))
}

/// `YYMMDDHHMMSSZ` (UTCTime: years 1950-2049) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn parse_time(tag: u8, time: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_of_a_generated_certificate_is_read() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["n1".to_owned()]).expect("params");
        // One date in UTCTime's range and one past 2049 (GeneralizedTime).
        for (year, unix) in [(2031, 1_937_652_245), (2055, 2_695_034_645)] {
            params.not_after = rcgen::date_time_ymd(year, 5, 27) + time::Duration::seconds(45_845);
            let cert = params.self_signed(&key).expect("cert");
            assert_eq!(not_after(cert.der()), Some(unix), "{year}");
        }
    }

    #[test]
    fn dates_and_lengths_are_read_exactly() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20310527124405Z"),
            Some(1_937_652_245)
        );
        assert_eq!(parse_time(UTC_TIME, b"31052712440Z"), None);
        assert_eq!(parse_time(0x04, b"310527124405Z"), None);
        let long = [&[0x30, 0x81, 0x03][..], b"abc", b"rest"].concat();
        assert_eq!(any_element(&long), Some((0x30, &b"abc"[..], &b"rest"[..])));
        assert_eq!(any_element(&[0x30, 0x05, 1, 2]), None, "content cut short");
        assert_eq!(not_after(b"not a certificate"), None);
    }
}

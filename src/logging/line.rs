//! The JSON line, written straight into tracing-subscriber's buffer.
//!
//! The same bytes as tracing-subscriber's JSON format with `flatten_event(true)` and no spans
//! (`{"timestamp":…,"level":…,<fields in order>,"target":…}`), which the tests below hold it to,
//! at a fraction of its cost: that format writes through serde_json into an `io::Write` adapter
//! that checks each piece for UTF-8 again. Here each value is written once, escaped as serde_json
//! escapes it.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter; `T` writes the timestamp ([`Utc`] in the adapters).
pub struct JsonLine<T> {
    pub timer: T,
}

impl<S, N, T> FormatEvent<S, N> for JsonLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate carry their real level and target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        self.timer.format_time(&mut Writer::new(&mut Escaped(&mut writer)))?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = Fields { writer: &mut writer, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// Each field as `,"name":value`, as tracing-serde gives each kind of value to serde_json.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_str(",\"")?;
                Escaped(&mut *self.writer).write_str(field.name())?;
                self.writer.write_str("\":")?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| string(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's way: the shortest form that reads back the same; null when not finite.
        self.entry(field, |w| match serde_json::Number::from_f64(value) {
            Some(number) => write!(w, "{number}"),
            None => w.write_str("null"),
        });
    }
}

/// `value` as a JSON string.
fn string(w: &mut impl Write, value: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(value)?;
    w.write_char('"')
}

/// Writes what it is given escaped for the inside of a JSON string, with serde_json's escapes:
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00XX` (lowercase) for other control characters.
struct Escaped<'a, W: Write + ?Sized>(&'a mut W);

impl<W: Write + ?Sized> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Nearly every value has nothing to escape: one pass the compiler vectorises (no early
        // exit), then one write.
        let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
        if text.bytes().fold(true, |all, b| all & plain(b)) {
            return self.0.write_str(text);
        }
        let mut start = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[start..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = at + 1;
        }
        self.0.write_str(&text[start..])
    }
}

/// The time as tracing-subscriber's `SystemTime` writes it (RFC 3339, UTC, microseconds:
/// `2026-11-29T12:00:00.000001Z`), the date and time of day made once a second per thread: made
/// for each line, they were a quarter of its cost.
pub struct Utc;

impl FormatTime for Utc {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        thread_local! {
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        SECOND.with_borrow_mut(|cached| write_time(now, cached, w))
    }
}

/// `now` (since the Unix epoch) written; `cached` holds the text of one second.
fn write_time(now: Duration, (second, text): &mut (u64, String), w: &mut impl Write) -> fmt::Result {
    if *second != now.as_secs() {
        let at = i64::try_from(now.as_secs()).ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        let at = at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (month, day) = (u8::from(at.month()), at.day());
        let (hour, minute, s) = at.to_hms();
        text.clear();
        write!(text, "{:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{s:02}", at.year())?;
        *second = now.as_secs();
    }
    write!(w, "{text}.{:06}Z", now.subsec_micros())
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::FormatTime;

    use super::JsonLine;
    use crate::logging::Sink;

    /// A fixed time with a character to escape, so that both formats are compared on it too.
    #[derive(Clone, Copy)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
            w.write_str("2026-11-29T12:00:00.000001Z\"")
        }
    }

    /// The lines `emit` logs through tracing-subscriber's JSON format and through ours.
    fn both(emit: fn()) -> (String, String) {
        let run = |ours: bool| {
            let out = Sink::default();
            let writer = out.clone();
            let layer = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_max_level(tracing::Level::TRACE);
            let subscriber = if ours {
                tracing::Dispatch::new(layer.event_format(JsonLine { timer: Fixed }).finish())
            } else {
                let json = layer.json().flatten_event(true).with_current_span(false).with_span_list(false);
                tracing::Dispatch::new(json.with_timer(Fixed).finish())
            };
            tracing::dispatcher::with_default(&subscriber, emit);
            out.text()
        };
        (run(false), run(true))
    }

    #[test]
    fn the_time_is_written_as_tracing_subscriber_writes_it() {
        use tracing_subscriber::fmt::time::SystemTime;
        let written = |timer: &dyn FormatTime| {
            let mut text = String::new();
            timer.format_time(&mut Writer::new(&mut text)).unwrap();
            text
        };
        // Same width, so text order is time order: ours lies between two of tracing's.
        for _ in 0..1000 {
            let (before, ours, after) = (written(&SystemTime), written(&super::Utc), written(&SystemTime));
            assert_eq!(ours.len(), before.len(), "{ours} against {before}");
            assert!(before <= ours && ours <= after, "{ours} not between {before} and {after}");
        }
    }

    #[test]
    fn each_second_is_written_anew() {
        // (seconds, microseconds since the epoch) and the time, from Python's datetime.
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_399, 999_999, "2000-02-28T23:59:59.999999Z"),
            (951_782_400, 1, "2000-02-29T00:00:00.000001Z"),
            (1_798_532_652, 656_933, "2026-12-29T08:24:12.656933Z"),
            (1_798_532_652, 7, "2026-12-29T08:24:12.000007Z"),
            (4_102_444_800, 0, "2100-01-01T00:00:00.000000Z"),
        ];
        // One cache through them all, as a thread's is.
        let mut cached = (u64::MAX, String::new());
        for (seconds, micros, expected) in cases {
            let mut text = String::new();
            let now = std::time::Duration::new(seconds, micros * 1000);
            super::write_time(now, &mut cached, &mut text).unwrap();
            assert_eq!(text, expected, "{seconds}.{micros:06}");
        }
    }

    macro_rules! same_as_tracing_json {
        ($($name:ident: $emit:block)*) => {$(
            #[test]
            fn $name() {
                let (theirs, ours) = both(|| $emit);
                assert!(theirs.ends_with("}\n") && theirs.matches('\n').count() == 1, "{theirs}");
                assert_eq!(ours, theirs);
            }
        )*};
    }

    same_as_tracing_json! {
        review_line: {
            tracing::info!(uid = "705ab4f5", kind = "Pod", namespace = "shop", name = "", operation = "CREATE",
                decision = "injected", reason = "", latency_us = 41u64, "review")
        }
        refusal_line: { tracing::warn!(status = 415u64, decision = "error", reason = %"expected \"application/json\"", "request refused") }
        escapes_in_strings: { tracing::info!(text = "quote \" backslash \\ nl \n cr \r tab \t bs \u{8} ff \u{c} nul \0 us \u{1f} del \u{7f} é ☃", "x") }
        escapes_in_debug_values: { tracing::error!(error = ?"a\"b\\c\nd", message2 = ?Some(3), "failed: {}", "a\tb") }
        numbers_and_bools: { tracing::debug!(a = -7i64, b = u64::MAX, c = true, d = false, "n") }
        floats: { tracing::info!(a = 0.1f64, b = 1.0f64, c = 1e21f64, d = -2.5e-8f64, e = f64::NAN, f = f64::INFINITY, g = 0.0f64, "f") }
        wide_integers: { tracing::info!(a = 1u128 << 100, b = -(1i128 << 100), "w") }
        errors_as_display: { tracing::warn!(error = &std::io::Error::other("disk \"full\"") as &(dyn std::error::Error + 'static), "e") }
        no_fields_but_the_message: { tracing::trace!("only a message") }
        no_message: { tracing::info!(a = "b") }
        field_named_with_dots: { tracing::info!(drain_delay.s = 5u64, "shutting down") }
    }
}

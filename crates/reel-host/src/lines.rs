//! JSON lines out: each line written whole and flushed, so that a reader (or a run
//! that is stopped) never sees half a line.

use std::io::Write;

use reel_sched::StageError;

/// Where a job's result lines go, if anywhere.
pub(crate) struct LineOut {
    out: Option<Box<dyn Write + Send>>,
    /// What the lines are, for error messages (`frame lines`, `detection lines`).
    what: &'static str,
}

impl LineOut {
    /// Lines of `what` into `out`; `None` discards them.
    pub(crate) fn new(out: Option<Box<dyn Write + Send>>, what: &'static str) -> Self {
        Self { out, what }
    }

    /// Writes `line` and a newline in one write, then flushes. `line` is left as it
    /// was given.
    pub(crate) fn write_line(&mut self, line: &mut String) -> Result<(), StageError> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        line.push('\n');
        let written = out.write_all(line.as_bytes()).and_then(|()| out.flush());
        line.pop();
        written.map_err(|e| StageError::fatal(format!("writing {}: {e}", self.what)))
    }

    /// Flushes what is buffered, at the end of the stream.
    pub(crate) fn finish(&mut self) -> Result<(), StageError> {
        if let Some(out) = self.out.as_mut() {
            out.flush()
                .map_err(|e| StageError::fatal(format!("writing {}: {e}", self.what)))?;
        }
        Ok(())
    }
}

/// A JSON number (non-finite values become null).
pub(crate) fn json_number(v: f64) -> String {
    if v.is_finite() {
        // Six decimals keep the lines short and exact enough for every measure.
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".to_string()
        } else {
            s.to_string()
        }
    } else {
        "null".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_valid_json() {
        assert_eq!(json_number(1.5), "1.5");
        assert_eq!(json_number(2.0), "2");
        assert_eq!(json_number(0.0), "0");
        assert_eq!(json_number(f64::NAN), "null");
        assert_eq!(json_number(-0.25), "-0.25");
        assert_eq!(json_number(1e-9), "0");
    }

    #[test]
    fn lines_are_written_whole_and_the_line_is_kept() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = LineOut::new(Some(Box::new(Shared(buf.clone()))), "test lines");
        let mut line = String::from("{\"a\":1}");
        out.write_line(&mut line).unwrap();
        out.write_line(&mut line).unwrap();
        out.finish().unwrap();
        assert_eq!(line, "{\"a\":1}");
        assert_eq!(&*buf.lock().unwrap(), b"{\"a\":1}\n{\"a\":1}\n");
        let mut none = LineOut::new(None, "test lines");
        none.write_line(&mut line).unwrap();
    }

    #[test]
    fn a_failed_write_is_fatal_and_names_the_lines() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("no space left"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = LineOut::new(Some(Box::new(Full)), "frame lines");
        let e = out.write_line(&mut String::from("x")).unwrap_err();
        assert!(e.is_fatal());
        assert!(
            e.to_string().contains("writing frame lines: no space left"),
            "{e}"
        );
    }
}

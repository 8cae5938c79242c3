//! A small getopt for the shims: short options (`-n name`, `-nname`,
//! bundled flags `-GQ`), long options (`--name name`, `--name=name`), and
//! options whose value is optional (only when attached: `-pX`,
//! `--promotion=X`), the way glib parses Pacemaker's tools.
//!
//! Must not: know any tool's options; each tool passes its [`Opt`] table.

/// One option a tool accepts.
pub struct Opt {
    pub short: Option<char>,
    pub long: &'static str,
    pub value: Value,
}

/// An option with both a short and a long name (how every shim spells
/// its options table).
pub const fn opt(short: char, long: &'static str, value: Value) -> Opt {
    Opt {
        short: Some(short),
        long,
        value,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Value {
    None,
    Required,
    Optional,
}

/// Parsed options, by long name, in command-line order.
#[derive(Debug, Default)]
pub struct Parsed {
    pub opts: Vec<(&'static str, Option<String>)>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn has(&self, long: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == long)
    }

    /// The last value given for `long`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| *n == long)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Parses `args` against `table`; the error names the offending argument.
pub fn parse(table: &[Opt], args: &[String]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            parsed.positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let opt = table
                .iter()
                .find(|o| o.long == name)
                .ok_or_else(|| format!("unknown option `--{name}`"))?;
            let value = take_value(opt, attached, args, &mut i)?;
            parsed.opts.push((opt.long, value));
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                let opt = table
                    .iter()
                    .find(|o| o.short == Some(c))
                    .ok_or_else(|| format!("unknown option `-{c}`"))?;
                if opt.value == Value::None {
                    parsed.opts.push((opt.long, None));
                    continue;
                }
                let rest = &shorts[at + c.len_utf8()..];
                let attached = (!rest.is_empty()).then(|| rest.to_string());
                let value = take_value(opt, attached, args, &mut i)?;
                parsed.opts.push((opt.long, value));
                break;
            }
        } else {
            parsed.positional.push(arg.clone());
        }
    }
    Ok(parsed)
}

fn take_value(
    opt: &Opt,
    attached: Option<String>,
    args: &[String],
    i: &mut usize,
) -> Result<Option<String>, String> {
    match (opt.value, attached) {
        (Value::None, Some(_)) => Err(format!("option `--{}` takes no value", opt.long)),
        (Value::None, None) => Ok(None),
        (_, Some(v)) => Ok(Some(v)),
        (Value::Optional, None) => Ok(None),
        (Value::Required, None) => match args.get(*i) {
            Some(v) => {
                *i += 1;
                Ok(Some(v.clone()))
            }
            None => Err(format!("option `--{}` needs a value", opt.long)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Opt] = &[
        Opt {
            short: Some('n'),
            long: "name",
            value: Value::Required,
        },
        Opt {
            short: Some('G'),
            long: "query",
            value: Value::None,
        },
        Opt {
            short: Some('q'),
            long: "quiet",
            value: Value::None,
        },
        Opt {
            short: Some('p'),
            long: "promotion",
            value: Value::Optional,
        },
    ];

    fn p(args: &str) -> Result<Parsed, String> {
        parse(
            TABLE,
            &args
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn short_long_attached_and_bundled_forms() {
        let parsed = p("-n a --name=b -Gq -nc --name d -p -pX --promotion=Y").unwrap();
        let names: Vec<_> = parsed.opts.iter().map(|(n, v)| (*n, v.clone())).collect();
        assert_eq!(names[0], ("name", Some("a".into())));
        assert_eq!(names[1], ("name", Some("b".into())));
        assert_eq!(names[2], ("query", None));
        assert_eq!(names[3], ("quiet", None));
        assert_eq!(names[4], ("name", Some("c".into())));
        assert_eq!(parsed.value("name"), Some("d"));
        assert_eq!(names[6], ("promotion", None));
        assert_eq!(names[7], ("promotion", Some("X".into())));
        assert_eq!(names[8], ("promotion", Some("Y".into())));
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(p("-x").unwrap_err(), "unknown option `-x`");
        assert_eq!(p("--bogus=1").unwrap_err(), "unknown option `--bogus`");
        assert_eq!(p("-n").unwrap_err(), "option `--name` needs a value");
        assert_eq!(
            p("--query=1").unwrap_err(),
            "option `--query` takes no value"
        );
    }
}

//! The command line as runc's flag parser reads it, before clap sees it:
//! every long flag also with a single dash (`-root`, `-force`, `-no-pivot`,
//! which callers and scripts written for runc use), and a flag missing its
//! value said as `flag needs an argument: -root`.
//!
//! The rewrite needs clap's flag tree, which costs every hull exec heap
//! (see `Command`), so it is built only when a word could need it: a
//! single-dash word longer than a short flag, or a flag as the last word.
//! The usual command line costs one scan of argv.

use std::ffi::OsString;

use clap::CommandFactory;

/// The words clap should parse, or the one-line usage error.
pub fn normalize(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    if !may_need_rewrite(&args) {
        return Ok(args);
    }
    let mut root = super::Cli::command();
    root.build();
    rewrite(args, &root)
}

fn may_need_rewrite(args: &[OsString]) -> bool {
    let words = || {
        args.iter()
            .skip(1)
            .map(|a| a.as_encoded_bytes())
            .take_while(|a| *a != b"--")
    };
    let single_dash_word = words().any(|a| a.len() > 2 && a[0] == b'-' && a[1] != b'-');
    let ends_in_flag = words().last().is_some_and(|a| a.first() == Some(&b'-'));
    single_dash_word || ends_in_flag
}

/// Walk the words as clap will: globals, the verb, its flags. A verb's
/// operands after the container id of `exec`, `kill` and `ps` are the
/// command, the signal and ps(1)'s options: never rewritten.
fn rewrite(mut args: Vec<OsString>, root: &clap::Command) -> Result<Vec<OsString>, String> {
    let mut cmd = root;
    let mut i = 1;
    while i < args.len() {
        let word = args[i].as_encoded_bytes();
        if word == b"--" {
            break;
        }
        if word.len() >= 2 && word[0] == b'-' {
            let double = word[1] == b'-';
            let body = &word[if double { 2 } else { 1 }..];
            let end = body.iter().position(|&c| c == b'=').unwrap_or(body.len());
            let (name, inline_value) = (&body[..end], end < body.len());
            let short = !double && name.len() == 1;
            let Some(arg) = find(cmd, name, short) else {
                // A cluster of short flags (`-ti`), an attached value
                // (`-b.`), or a flag clap will name in its own error.
                i += 1;
                continue;
            };
            let needs_value = arg.get_action().takes_values() && !inline_value;
            if needs_value && i + 1 == args.len() {
                let name = String::from_utf8_lossy(name);
                return Err(format!("flag needs an argument: -{name}"));
            }
            if !double && !short {
                let mut long = OsString::from("-");
                long.push(&args[i]);
                args[i] = long;
            }
            if needs_value {
                i += 1;
            }
        } else if std::ptr::eq(cmd, root) {
            match root.get_subcommands().find(|s| {
                s.get_name().as_bytes() == word || s.get_all_aliases().any(|a| a.as_bytes() == word)
            }) {
                Some(verb) => cmd = verb,
                None => break,
            }
        } else if matches!(cmd.get_name(), "exec" | "kill" | "ps") {
            break;
        }
        i += 1;
    }
    Ok(args)
}

/// The flag of `cmd` (globals included once built) by long or short name.
fn find<'a>(cmd: &'a clap::Command, name: &[u8], short: bool) -> Option<&'a clap::Arg> {
    cmd.get_arguments().find(|a| {
        if short {
            a.get_short()
                .is_some_and(|c| c.is_ascii() && [c as u8] == name)
        } else {
            a.get_long().is_some_and(|l| l.as_bytes() == name)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn words(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    fn normalized(line: &str) -> Result<String, String> {
        normalize(words(line)).map(|v| {
            v.iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            normalized("hull -root /r -debug delete -force c1").as_deref(),
            Ok("hull --root /r --debug delete --force c1")
        );
        assert_eq!(
            normalized("hull create -bundle=/b -no-pivot c1").as_deref(),
            Ok("hull create --bundle=/b --no-pivot c1")
        );
        assert_eq!(
            normalized("hull delete c1 -force").as_deref(),
            Ok("hull delete c1 --force")
        );
    }

    #[test]
    fn values_and_operands_are_left_alone() {
        // A value that looks like a flag, the exec'd command, ps options.
        assert_eq!(
            normalized("hull update -cpu-quota -100 c1").as_deref(),
            Ok("hull update --cpu-quota -100 c1")
        );
        assert_eq!(
            normalized("hull exec -env A=1 c1 ls -root -la").as_deref(),
            Ok("hull exec --env A=1 c1 ls -root -la")
        );
        assert_eq!(
            normalized("hull ps c1 -eo pid").as_deref(),
            Ok("hull ps c1 -eo pid")
        );
        assert_eq!(
            normalized("hull exec -ti c1 sh").as_deref(),
            Ok("hull exec -ti c1 sh")
        );
        assert_eq!(
            normalized("hull run -b . -- -root").as_deref(),
            Ok("hull run -b . -- -root")
        );
    }

    #[test]
    fn a_flag_without_its_value_is_named_as_runc_names_it() {
        assert_eq!(
            normalized("hull --root"),
            Err("flag needs an argument: -root".into())
        );
        assert_eq!(
            normalized("hull -log"),
            Err("flag needs an argument: -log".into())
        );
        assert_eq!(
            normalized("hull create c1 -b"),
            Err("flag needs an argument: -b".into())
        );
        assert_eq!(
            normalized("hull delete c1 -f").as_deref(),
            Ok("hull delete c1 -f")
        );
    }
}

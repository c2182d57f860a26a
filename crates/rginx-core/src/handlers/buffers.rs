//! Where bodies are buffered: `client_body_temp_path` and
//! `proxy_temp_path`.

use rginx_config::Directive;

use crate::build::{Builder, Frame, Msg};
use crate::model::{TempPath, Value};

use super::{arg, duplicate_check, setting};

/// `client_body_temp_path PATH [LEVEL1 [LEVEL2 [LEVEL3]]]` and
/// `proxy_temp_path ...` (`ngx_conf_set_path_slot`): each level 1 or 2
/// digits long, and a name's levels no longer than its ten digits.
pub fn temp_path(b: &mut Builder<'_>, d: &Directive, f: &mut Frame<'_>) -> Result<(), Msg> {
    let name = d.name();
    duplicate_check(f.settings(), name)?;
    let mut levels = Vec::new();
    let mut length = 0;
    for word in &d.args[1..] {
        let level = word
            .as_str()
            .parse::<u8>()
            .ok()
            .filter(|l| *l > 0 && word.as_str().bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| Msg::directive("invalid value"))?;
        length += usize::from(level) + 1;
        levels.push(level);
    }
    if length > 10 + levels.len() {
        return Err(Msg::directive("invalid value"));
    }
    let key: &'static str = if name == "proxy_temp_path" {
        "proxy_temp_path"
    } else {
        "client_body_temp_path"
    };
    let path = TempPath {
        dir: b.options.full_name(arg(d, 0)),
        levels,
    };
    f.settings().insert(key, setting(d, Value::TempPath(path)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::TempPath;

    #[test]
    fn levels_take_the_name_s_last_digits() {
        let path = TempPath {
            dir: "/t/".into(),
            levels: vec![1, 2],
        };
        assert_eq!(path.file_name(457), "/t/7/45/0000000457");
        assert_eq!(TempPath::plain("/t").file_name(1), "/t/0000000001");
    }
}

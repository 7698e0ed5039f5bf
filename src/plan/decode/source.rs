//! Files a plan points to (`reference-snapshot`, `universe.symbols-file`): paths resolved
//! against the plan's directory, contents read through [`crate::inputs`] with located errors.

use super::walker::Ctx;
use crate::plan::error::PlanError;
use crate::plan::node::Loc;
use std::path::{Path, PathBuf};

/// A resolved relative path: against `base` when relative.
pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A file the plan points to, read through [`crate::inputs`]: a file that cannot be read is
/// reported at the plan key, a bad line at its place in the file (under the key's path).
pub(super) fn input_file<T>(
    ctx: &mut Ctx<'_>,
    key_loc: Loc,
    key: &str,
    p: &Path,
    read: impl FnOnce(&Path) -> Result<T, crate::inputs::InputError>,
) -> Option<T> {
    match read(p) {
        Ok(v) => Some(v),
        Err(crate::inputs::InputError::Read { source, .. }) => {
            ctx.err_hint(
                key_loc,
                key,
                format!("cannot read `{}`: {source}", p.display()),
                "the path is relative to the plan file",
            );
            None
        }
        Err(crate::inputs::InputError::Invalid(errors)) => {
            for e in errors {
                let loc = Loc {
                    line: e.line,
                    col: e.col,
                };
                let mut err = PlanError::new(&e.file, loc, key, e.message);
                if let Some(h) = e.hint {
                    err = err.with_hint(h);
                }
                ctx.errors.push(err);
            }
            None
        }
    }
}

//! `kekkai policies`: every policy `-p NAME` finds, where, and what it says it is; files it
//! passes over are listed with the reason.

use kekkai::error::Error;

pub(crate) fn policies() -> Result<i32, Error> {
    for (name, place, desc) in kekkai::policy::available() {
        println!("{name:<16} {place}");
        if !desc.is_empty() {
            println!("{:<16} {desc}", "");
        }
    }
    Ok(0)
}

//! `kekkai schema`: the JSON Schema of the policy language, for editors.

use kekkai::error::Error;

pub(crate) fn schema() -> Result<i32, Error> {
    println!("{:#}", kekkai::schema::policy_schema());
    Ok(0)
}

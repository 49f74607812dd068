//! Identity: the user, group and supplementary groups the program runs as (launch step 8,
//! where kekkai drops to them) as User=, Group= and SupplementaryGroups=.

use super::directive::{Directive, Unit, Value, escape_specifiers};
use crate::plan::Plan;

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("identity");
    let id = &plan.identity;
    match &id.user {
        Some(name) => o.set(Directive::User, Value::Text(escape_specifiers(name))),
        None => {
            if *id.uid != 0 {
                o.note(format!(
                    "uid {} has no user name in the root's passwd; systemd accepts the number.",
                    id.uid
                ));
            }
            o.set(Directive::User, Value::Number((*id.uid).into()));
        }
    }
    o.set(Directive::Group, Value::Number((*id.gid).into()));
    if !id.groups.is_empty() {
        let groups = id.groups.iter().map(u32::to_string).collect();
        o.set(Directive::SupplementaryGroups, Value::Words(groups));
    }
    if *id.uid == 65534 {
        o.note(
            "systemd warns about running as nobody; DynamicUser=yes gives the unit a fresh \
             unprivileged id instead.",
        );
    }
}

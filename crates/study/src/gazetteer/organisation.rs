//! Reading an organisation's name: the institution register (anchored at the start of the
//! name), then the places the name contains, then a public institution named after a province
//! only is at the provincial capital.
//!
//! Does not own: loading the register (`load`) or the address rules (`matching`, whose `decide`
//! it calls). Imports only the leaves `model` and `text`.

use aho_corasick::{Anchored, Input};

use super::model::{Gazetteer, Located, Scratch};
use super::text::strip_postcode;

impl Gazetteer {
    /// The register's prefecture for an organisation whose name starts with an institution's
    /// name, unless a place named after it says otherwise (`山东大学威海分校` -> 威海).
    pub fn locate_register(&self, name: &str, s: &mut Scratch) -> Option<u16> {
        let register = self.register.as_ref()?;
        let mut buf = std::mem::take(&mut s.text);
        let t = strip_postcode(self.normalize(name, &mut buf));
        let found = register
            .find(Input::new(t).anchored(Anchored::Yes))
            .map(|m| {
                let rest = &t[m.end()..];
                let after = if rest.is_empty() {
                    None
                } else {
                    self.decide(rest, s).unit()
                };
                after.unwrap_or(self.register_units[m.pattern().as_usize()])
            });
        s.text = buf;
        found
    }

    /// The place an organisation's name points to: the most specific place it names; failing
    /// that, a university or public institute named after a province only is at the provincial
    /// capital (`山西大学`). Companies named after a province only are not guessed.
    pub fn locate_name(&self, name: &str, s: &mut Scratch) -> Located {
        let mut buf = std::mem::take(&mut s.text);
        let t = strip_postcode(self.normalize(name, &mut buf));
        let mut out = self.decide(t, s);
        if out == Located::Nothing && is_public_institution(t) {
            let mut provinces = s
                .hits
                .iter()
                .filter_map(|h| self.names[h.id as usize].province);
            if let Some(p) = provinces.next() {
                if provinces.all(|q| q == p) {
                    if let Some(&u) = self.capitals.get(&p) {
                        out = Located::Unit(u);
                    }
                }
            }
        }
        s.text = buf;
        out
    }
}

/// Names a university, college, research institute, academy or hospital, and not a company.
fn is_public_institution(t: &str) -> bool {
    ["大学", "学院", "研究院", "研究所", "科学院", "医院"]
        .iter()
        .any(|w| t.contains(w))
        && !t.contains("公司")
}

//! Reading an address: the names it contains (longest first, street and township names
//! dropped) and rules 6 to 9 of docs/data.md over them: the most specific level decides, context
//! comes from the left, ambiguity abstains.
//!
//! Does not own: the tables (`load`), normalisation (`text`), or the organisation-name rules
//! (`organisation`, which calls `decide`). Imports only the leaves `model` and `text`.

use super::model::{Gazetteer, Hit, Level, Located, Scratch, ORDER};
use super::text::{is_county_short_only, starts_street, starts_township, strip_postcode};

impl Gazetteer {
    /// The place an address names.
    pub fn locate_address(&self, address: &str, s: &mut Scratch) -> Located {
        let mut buf = std::mem::take(&mut s.text);
        let t = self.normalize(address, &mut buf);
        let t = strip_postcode(t);
        let out = self.decide(t, s);
        s.text = buf;
        out
    }

    /// Names in the text, longest at each position, left to right; a short name that begins a
    /// street, road or township name is no place (`天河北路`, `上海路`, `河北街道`).
    fn scan(&self, t: &str, hits: &mut Vec<Hit>) {
        hits.clear();
        let mut at = 0;
        while at < t.len() {
            let Some(m) = self.matcher.leftmost_find_iter(&t[at..]).next() else {
                break;
            };
            let (start, end) = (at + m.start(), at + m.end());
            let id = m.value() as usize;
            let name = &self.names[id];
            let rest = &t[end..];
            let dropped = name.short
                && (starts_street(rest)
                    || starts_township(rest)
                    || (rest.starts_with("新区") && is_county_short_only(name)));
            if dropped {
                at = start + t[start..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            hits.push(Hit { id: id as u32 });
            at = end;
        }
    }

    /// Rules 6 to 9 of docs/data.md over the names found in `t`.
    pub(super) fn decide(&self, t: &str, s: &mut Scratch) -> Located {
        let mut hits = std::mem::take(&mut s.hits);
        self.scan(t, &mut hits);
        let out = self.decide_hits(&hits, s);
        s.hits = hits;
        out
    }

    fn decide_hits(&self, hits: &[Hit], s: &mut Scratch) -> Located {
        if hits.is_empty() {
            return Located::Nothing;
        }
        let mut found = std::mem::take(&mut s.found);
        let mut units = std::mem::take(&mut s.found_units);
        let mut out = Located::Nothing;
        for (g, levels) in ORDER.iter().enumerate() {
            found.clear();
            units.clear();
            for k in 0..hits.len() {
                if self.candidates(hits, k, g, levels, s) {
                    units.extend_from_slice(&s.cands);
                    found.push((k, units.len()));
                }
            }
            if found.is_empty() {
                continue;
            }
            let first = units[0];
            let mut start = 0;
            let mut single = None;
            for &(_, end) in &found {
                if single.is_none() && end - start == 1 {
                    single = Some(units[start]);
                }
                start = end;
            }
            out = if units.iter().all(|&u| u == first) {
                Located::Unit(first)
            } else if let Some(u) = single {
                Located::Unit(u)
            } else {
                Located::Ambiguous(hits[found[0].0].id)
            };
            break;
        }
        s.found = found;
        s.found_units = units;
        out
    }

    /// The candidates of level group `g` (`ORDER[g]`, `levels`) for the `k`th name of the text,
    /// given the names before it (context from the left), in `cands`; false when there are none
    /// or the context rules the name out.
    fn candidates(
        &self,
        hits: &[Hit],
        k: usize,
        g: usize,
        levels: &[Level],
        s: &mut Scratch,
    ) -> bool {
        let hit = &hits[k];
        let county_level = g != 3 && g != 5;
        let province_of = |u: u16| (self.units[usize::from(u)] / 10_000) as u8;
        let name = &self.names[hit.id as usize];
        let before = &hits[..k];
        let provinces = |p: u8| {
            before.iter().any(|h| {
                self.names[h.id as usize]
                    .entries
                    .iter()
                    .any(|e| e.level == Level::Province && e.province == p)
            })
        };
        // The name's own candidates first: most names have none at most levels, and then the
        // context need not be read.
        let cands = &mut s.cands;
        cands.clear();
        for e in &name.entries {
            if !levels.contains(&e.level) {
                continue;
            }
            // A short name that is also a province's (海南, 河南, 河北) names a place of
            // another province only when that province is named before it.
            if let Some(p) = name.province {
                if matches!(e.level, Level::PrefShort | Level::CountyShort)
                    && e.province != p
                    && !provinces(e.province)
                {
                    continue;
                }
            }
            if !cands.contains(&e.unit) {
                cands.push(e.unit);
            }
        }
        if cands.is_empty() {
            return false;
        }
        // A name that is both a prefecture and a county (巢湖市, 嘉峪关市) followed by a
        // county-level name is the prefecture of that county.
        if g <= 1
            && name.prefecture
            && hits[k + 1..]
                .iter()
                .any(|h| self.names[h.id as usize].county)
        {
            return false;
        }
        // Context from the left: provinces, full prefecture names (hard), short
        // prefecture names (soft).
        let any_province = before
            .iter()
            .any(|h| self.names[h.id as usize].province.is_some());
        let (hard, soft, kept) = (&mut s.hard, &mut s.soft, &mut s.kept);
        hard.clear();
        soft.clear();
        for h in before {
            for e in &self.names[h.id as usize].entries {
                match e.level {
                    Level::PrefFull | Level::OldPref | Level::OldPrefSplit => hard.push(e.unit),
                    Level::PrefShort | Level::OldPrefShort => soft.push(e.unit),
                    _ => {}
                }
            }
        }
        if !hard.is_empty() {
            kept.clear();
            kept.extend(cands.iter().copied().filter(|c| hard.contains(c)));
            for p in hard.iter() {
                if let Some(&now) = self.history.get(&(hit.id, *p)) {
                    if !kept.contains(&now) {
                        kept.push(now);
                    }
                }
            }
            if !kept.is_empty() {
                std::mem::swap(cands, kept);
            } else if county_level || g == 5 {
                return false;
            }
        }
        if any_province {
            kept.clear();
            kept.extend(cands.iter().copied().filter(|&c| provinces(province_of(c))));
            if !kept.is_empty() {
                std::mem::swap(cands, kept);
            } else if g != 3 {
                return false;
            }
        }
        if g == 2 && hard.is_empty() && !any_province {
            return false;
        }
        if !soft.is_empty() {
            kept.clear();
            kept.extend(cands.iter().copied().filter(|c| soft.contains(c)));
            if !kept.is_empty() {
                std::mem::swap(cands, kept);
            }
        }
        true
    }
}

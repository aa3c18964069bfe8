//! The patent application records: how many of each kind a year gets, and who applies with
//! whom.
//!
//! Owns: calibrating the number of cross-city applications per year to the target
//! collaboration level, drawing each year's records (cross-city, same-city, single-applicant and
//! foreign) from its own stream with the form of the first applicant's address, and the anchor
//! records that give every co-applying organisation a first-applicant record whose address tells
//! its city. Deliberately does not own: writing a record into the export
//! (`export`) or counting what the pipeline must find (`truth`).

use arrayvec::ArrayVec;
use rustc_hash::FxHashMap;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::address::AddressForm;
use super::cities::World;
use super::draw::{cumulative, draw_cum, pick, stream};
use super::orgs::{person_name, Org, PersonName, FOREIGN};
use super::places::Places;
use super::spec::{Mess, SynthSpec};
use crate::places::Cities;

/// Who an applicant is: an organisation (an index into the organisations), a person or a
/// foreign applicant (an index into `FOREIGN`). Names are looked up, not copied: a million
/// records then need no allocation of their own.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    Org(u32),
    Person(PersonName),
    Foreign(u8),
}

/// One applicant as generated: who, and its true city (None: a foreign applicant, or an
/// inventor listed as co-applicant, whom the process gives no city).
#[derive(Debug, Clone, Copy)]
pub struct Applicant {
    pub who: Who,
    pub city: Option<u32>,
}

impl Applicant {
    /// The name as written in the export.
    pub fn name<'a>(&'a self, orgs: &'a [Org]) -> &'a str {
        match &self.who {
            Who::Org(k) => &orgs[*k as usize].name,
            Who::Person(p) => p.as_str(),
            Who::Foreign(f) => FOREIGN[*f as usize].0,
        }
    }

    /// How its name is written: `OrgForm::name`, `person` or `foreign`.
    pub fn form(&self, orgs: &[Org]) -> &'static str {
        match self.who {
            Who::Org(k) => orgs[k as usize].form.name(),
            Who::Person(_) => "person",
            Who::Foreign(_) => "foreign",
        }
    }

    /// Its true city as an index into the cities.
    pub fn city(&self) -> Option<usize> {
        self.city.map(|c| c as usize)
    }
}

/// A record's applicants: two or three at most, kept inline.
pub type Applicants = ArrayVec<Applicant, 3>;

/// A patent application as generated: its year, type (the application number's type digit; 1 is
/// an invention), applicants in order, where the first one is, and a foreign applicant.
#[derive(Debug, Clone)]
pub struct Record {
    pub year: i32,
    pub ptype: u8,
    pub applicants: Applicants,
    pub first_city: Option<usize>,
    /// How the first applicant's address is written (drawn here so that anchors can tell which
    /// records locate their first applicant by design).
    pub address: AddressForm,
    pub foreign: Option<usize>,
    /// Whether this record survives ingestion (no fatal mess); only such records count in truth.
    pub clean: bool,
}

/// Per-year generation plan.
pub struct YearPlan {
    pub year: i32,
    pub t: usize,
    pub cross_city: u64,
    pub same_city: u64,
    pub single: u64,
    /// Expected cross-city incidences per city drive the draws.
    pub first_cum: Vec<f64>,
    pub weight: Vec<f64>,
    pub pop: Vec<f64>,
}

/// The records to draw: one plan per year, and the total of cross-city applications.
pub struct Plans {
    pub years: Vec<YearPlan>,
    pub cross_total: u64,
}

/// `records` is too small for the calibrated collaboration level.
pub struct TooFewRecords {
    /// The least number of records that would do.
    pub at_least: f64,
}

/// Calibrates the number of cross-city patents per year so that the expected mean incidences
/// per 10,000 people (over cities with yearbook data) follow the targets geometrically, then
/// fills the rest of `records` with same-city and single-applicant ones.
pub fn plan_years(spec: &SynthSpec, world: &World) -> Result<Plans, TooFewRecords> {
    let n = world.draws.len();
    let nt = world.years.len();
    let (pop, intensity, gravity, complete) = (
        &world.pop,
        &world.intensity,
        &world.gravity,
        &world.complete,
    );
    let mut plans = Vec::with_capacity(nt);
    let mut cross_total = 0u64;
    for (t, &year) in world.years.iter().enumerate() {
        let demand: Vec<f64> = (0..n).map(|i| intensity[i][t] * pop[i][t]).collect();
        let total_demand: f64 = demand.iter().sum();
        let p: Vec<f64> = demand.iter().map(|d| d / total_demand).collect();
        // Partner probabilities q(j | i) ∝ demand_j * gravity_ij.
        // A partner city always, a third city in 8% of applications (see `gen_year`); records
        // made unusable by the export's mess do not count.
        let mut expected = p.clone();
        for i in 0..n {
            let row: f64 = (0..n).map(|j| demand[j] * gravity[i][j]).sum();
            for j in 0..n {
                expected[j] += 1.08 * p[i] * demand[j] * gravity[i][j] / row;
            }
        }
        let usable =
            1.0 - (spec.mess.bad_dates + spec.mess.missing_applicants + spec.mess.bad_numbers);
        for e in &mut expected {
            *e *= usable;
        }
        let per_patent: f64 = complete
            .iter()
            .map(|&i| expected[i] / pop[i][t])
            .sum::<f64>()
            / complete.len() as f64;
        let share = t as f64 / (nt - 1) as f64;
        let target = spec.collab_first * (spec.collab_last / spec.collab_first).powf(share);
        let cross_city = (target / per_patent).round() as u64;
        cross_total += cross_city;
        plans.push(YearPlan {
            year,
            t,
            cross_city,
            same_city: 0,
            single: 0,
            first_cum: cumulative(demand.iter().copied()),
            weight: demand,
            pop: (0..n).map(|i| pop[i][t]).collect(),
        });
    }
    let budget = spec.records as f64;
    if budget < cross_total as f64 * 1.3 {
        return Err(TooFewRecords {
            at_least: (cross_total as f64 * 1.3).ceil(),
        });
    }
    // The rest: same-city joint applications (a quarter of the cross-city number) and
    // single-applicant ones, growing 8% a year.
    let rest = budget - cross_total as f64 * 1.25;
    let growth: Vec<f64> = (0..nt).map(|t| 1.08f64.powi(t as i32)).collect();
    let gsum: f64 = growth.iter().sum();
    for plan in &mut plans {
        plan.same_city = (plan.cross_city as f64 * 0.25).round() as u64;
        plan.single = (rest * growth[plan.t] / gsum).round() as u64;
    }
    Ok(Plans {
        years: plans,
        cross_total,
    })
}

/// What drawing a year's records needs besides its plan.
pub struct GenCtx<'a> {
    pub seed: u64,
    pub cities: &'a Cities,
    pub orgs: &'a [Org],
    pub orgs_of_city: &'a [Vec<usize>],
    pub gravity: &'a [Vec<f64>],
    pub mess: &'a Mess,
    /// Cumulative shares of `AddressForm::DRAWN`.
    pub address_cum: &'a [f64],
    pub places: &'a Places,
}

fn org_applicant(orgs: &[Org], k: usize) -> Applicant {
    Applicant {
        who: Who::Org(k as u32),
        city: Some(orgs[k].city as u32),
    }
}

fn person(r: &mut ChaCha8Rng, city: Option<usize>) -> Applicant {
    Applicant {
        who: Who::Person(person_name(r)),
        city: city.map(|c| c as u32),
    }
}

fn applicants<const N: usize>(list: [Applicant; N]) -> Applicants {
    list.into_iter().collect()
}

fn address_form(ctx: &GenCtx<'_>, r: &mut ChaCha8Rng) -> AddressForm {
    AddressForm::DRAWN[draw_cum(r, ctx.address_cum)]
}

fn random_org(ctx: &GenCtx<'_>, r: &mut ChaCha8Rng, city: usize) -> usize {
    *pick(r, &ctx.orgs_of_city[city])
}

fn draw_type(r: &mut ChaCha8Rng, invention_share: f64) -> u8 {
    let u = r.random::<f64>();
    if u < invention_share {
        1
    } else if u < invention_share + (1.0 - invention_share) * 0.8 {
        2
    } else {
        3
    }
}

/// Draws one year's records from the year's own stream (`records`, year), shuffled.
pub fn gen_year(ctx: &GenCtx<'_>, plan: &YearPlan) -> Vec<Record> {
    let n = ctx.cities.rows.len();
    let mut r = stream(ctx.seed, "records", plan.year as u64);
    let total = plan.cross_city + plan.same_city + plan.single;
    let mut recs = Vec::with_capacity(total as usize);
    let m = ctx.mess;
    let fatal = m.bad_dates + m.missing_applicants + m.bad_numbers;
    let partner_cums: Vec<Vec<f64>> = (0..n)
        .map(|i| cumulative((0..n).map(|j| plan.weight[j] * ctx.gravity[i][j])))
        .collect();
    // Cross-city joint applications.
    for _ in 0..plan.cross_city {
        let i = draw_cum(&mut r, &plan.first_cum);
        let partner_cum = &partner_cums[i];
        let j = draw_cum(&mut r, partner_cum);
        let mut applicants = applicants([
            org_applicant(ctx.orgs, random_org(ctx, &mut r, i)),
            org_applicant(ctx.orgs, random_org(ctx, &mut r, j)),
        ]);
        let u = r.random::<f64>();
        if u < 0.08 {
            let k = draw_cum(&mut r, partner_cum);
            applicants.push(org_applicant(ctx.orgs, random_org(ctx, &mut r, k)));
        } else if u < 0.20 {
            // An inventor named as co-applicant: individuals cannot be located by name.
            applicants.push(person(&mut r, None));
        }
        dedup_names(ctx.orgs, &mut applicants);
        recs.push(Record {
            year: plan.year,
            ptype: draw_type(&mut r, 0.6),
            first_city: Some(i),
            address: address_form(ctx, &mut r),
            applicants,
            foreign: None,
            clean: r.random::<f64>() >= fatal,
        });
    }
    // Same-city joint applications.
    let pop_cum = cumulative(plan.pop.iter().copied());
    for _ in 0..plan.same_city {
        let i = draw_cum(&mut r, &pop_cum);
        let mut applicants = applicants([org_applicant(ctx.orgs, random_org(ctx, &mut r, i))]);
        if r.random::<f64>() < 0.5 {
            applicants.push(org_applicant(ctx.orgs, random_org(ctx, &mut r, i)));
        } else {
            applicants.push(person(&mut r, None));
        }
        dedup_names(ctx.orgs, &mut applicants);
        recs.push(Record {
            year: plan.year,
            ptype: draw_type(&mut r, 0.45),
            first_city: Some(i),
            address: address_form(ctx, &mut r),
            applicants,
            foreign: None,
            clean: r.random::<f64>() >= fatal,
        });
    }
    // Single-applicant applications, and foreign applicants.
    for _ in 0..plan.single {
        let u = r.random::<f64>();
        if u < m.foreign {
            let f = r.random_range(0..FOREIGN.len());
            let mut applicants = applicants([Applicant {
                who: Who::Foreign(f as u8),
                city: None,
            }]);
            if r.random::<f64>() < 0.3 {
                let i = draw_cum(&mut r, &pop_cum);
                applicants.push(org_applicant(ctx.orgs, random_org(ctx, &mut r, i)));
            }
            recs.push(Record {
                year: plan.year,
                ptype: draw_type(&mut r, 0.7),
                first_city: None,
                address: AddressForm::Blank,
                applicants,
                foreign: Some(f),
                clean: r.random::<f64>() >= fatal,
            });
            continue;
        }
        let i = draw_cum(&mut r, &pop_cum);
        let (applicant, address) = if r.random::<f64>() < 0.25 {
            // Individuals file too; a tenth of them give no address.
            let blank = r.random::<f64>() < 0.1;
            let form = address_form(ctx, &mut r);
            (
                person(&mut r, Some(i)),
                if blank { AddressForm::Blank } else { form },
            )
        } else {
            let k = random_org(ctx, &mut r, i);
            (org_applicant(ctx.orgs, k), address_form(ctx, &mut r))
        };
        recs.push(Record {
            year: plan.year,
            ptype: draw_type(&mut r, 0.35),
            first_city: Some(i),
            address,
            applicants: applicants([applicant]),
            foreign: None,
            clean: r.random::<f64>() >= fatal,
        });
    }
    // Shuffle within the year (exports are sorted by number, which is assigned afterwards).
    for k in (1..recs.len()).rev() {
        let j = r.random_range(0..=k);
        recs.swap(k, j);
    }
    recs
}

/// Keeps the first applicant of each name (records have two or three: a scan beats a set).
fn dedup_names(orgs: &[Org], applicants: &mut Applicants) {
    let mut i = 1;
    while i < applicants.len() {
        let name = applicants[i].name(orgs);
        if applicants[..i].iter().any(|a| a.name(orgs) == name) {
            applicants.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Organisations that appear as co-applicants also file as first applicants: an anchor record,
/// drawn from the `anchors` stream, gives each one without a clean first-applicant record whose
/// address tells its city (`AddressForm::tells_city`) such a record, with a full address.
pub fn anchor_records(
    seed: u64,
    orgs: &[Org],
    per_year: &[Vec<Record>],
    years: &[i32],
) -> Vec<Record> {
    let nt = years.len();
    let mut anchored = vec![false; orgs.len()];
    let mut needed = vec![false; orgs.len()];
    // Organisations' names are unique (`orgs::build_orgs`), so an organisation is its index; a
    // person or foreign applicant is looked up by name in case it shares one with an
    // organisation (a fast hash: the map is never iterated).
    let org_index: FxHashMap<&str, usize> = orgs
        .iter()
        .enumerate()
        .map(|(k, o)| (o.name.as_str(), k))
        .collect();
    for rec in per_year.iter().flatten() {
        for (pos, a) in rec.applicants.iter().enumerate() {
            let org = match a.who {
                Who::Org(k) => Some(k as usize),
                _ => org_index.get(a.name(orgs)).copied(),
            };
            if let Some(k) = org {
                if pos == 0 && rec.clean && rec.address.tells_city() {
                    anchored[k] = true;
                } else if pos > 0 {
                    needed[k] = true;
                }
            }
        }
    }
    let mut anchors: Vec<Record> = Vec::new();
    let mut ar = stream(seed, "anchors", 0);
    for k in 0..orgs.len() {
        if needed[k] && !anchored[k] {
            let year = years[ar.random_range(0..nt)];
            anchors.push(Record {
                year,
                ptype: 2,
                applicants: applicants([org_applicant(orgs, k)]),
                first_city: Some(orgs[k].city),
                address: AddressForm::Full,
                foreign: None,
                clean: true,
            });
        }
    }
    anchors
}

//! The city yearbook's schema: the one list of its columns, in file order, with the decimals
//! each is written with.
//!
//! Owns: the key columns, every value column's name and position, and the named groups of
//! columns that are read together (the sector employment series, the price indices). `synth`
//! writes the yearbook from this list and `panel` reads it back by the same names, so a column
//! added, renamed or moved here changes both sides at once.
//! Deliberately does not own: drawing the values (`synth`) or turning them into panel variables
//! (`panel`); the meaning of each series is in the panel's codebook and docs/dgp.md.

/// The city's 6-digit administrative code (the first key column).
pub const CITY_CODE: &str = "adcode6";
/// The city's name (the second key column; not read back).
pub const CITY_NAME: &str = "city";
/// The calendar year (the third key column).
pub const YEAR: &str = "year";
/// The key columns, in file order, before every value column.
pub const KEYS: [&str; 3] = [CITY_CODE, CITY_NAME, YEAR];

/// Employment by sector (10,000 persons), in file order: the specialisation index compares
/// their shares.
pub const SECTORS: [&str; 6] = [
    "emp_manufacturing",
    "emp_construction",
    "emp_trade",
    "emp_finance",
    "emp_it",
    "emp_public",
];

/// Price indices of six goods (previous year = 100), in file order: the relative-price market
/// integration measure compares them between cities.
pub const PRICES: [&str; 6] = [
    "price_food",
    "price_clothing",
    "price_housing",
    "price_transport",
    "price_education",
    "price_health",
];

/// One value column: its name and how many decimals the writer prints (a missing value is a
/// blank cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub decimals: usize,
}

const fn col(name: &'static str, decimals: usize) -> Column {
    Column { name, decimals }
}

/// Every value column, in file order, after [`KEYS`].
pub const COLUMNS: [Column; 30] = [
    col("pop", 2),
    col("area_km2", 0),
    col("gdp", 2),
    col("pcgdp", 0),
    col("sec_share", 2),
    col("ter_share", 2),
    col("budget_exp", 2),
    col("fdi", 2),
    col("loans", 2),
    col("students", 0),
    col("road_area", 2),
    col("internet", 2),
    col("employment", 2),
    col(SECTORS[0], 3),
    col(SECTORS[1], 3),
    col(SECTORS[2], 3),
    col(SECTORS[3], 3),
    col(SECTORS[4], 3),
    col(SECTORS[5], 3),
    col("wage", 0),
    col("capital_stock", 2),
    col("innov_index", 3),
    col("passengers", 1),
    col(PRICES[0], 3),
    col(PRICES[1], 3),
    col(PRICES[2], 3),
    col(PRICES[3], 3),
    col(PRICES[4], 3),
    col(PRICES[5], 3),
    col("hist_post_1984", 4),
];

/// The header line, keys then values, without the line break.
pub fn header() -> String {
    KEYS.iter()
        .copied()
        .chain(COLUMNS.iter().map(|c| c.name))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique_and_not_keys() {
        let mut names: Vec<&str> = KEYS.to_vec();
        names.extend(COLUMNS.iter().map(|c| c.name));
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn every_sector_and_price_is_a_column() {
        for name in SECTORS.iter().chain(&PRICES) {
            assert!(COLUMNS.iter().any(|c| c.name == *name), "{name}");
        }
    }

    #[test]
    fn the_header_is_the_published_one() {
        assert_eq!(
            header(),
            "adcode6,city,year,pop,area_km2,gdp,pcgdp,sec_share,ter_share,budget_exp,fdi,loans,\
             students,road_area,internet,employment,emp_manufacturing,emp_construction,\
             emp_trade,emp_finance,emp_it,emp_public,wage,capital_stock,innov_index,passengers,\
             price_food,price_clothing,price_housing,price_transport,price_education,\
             price_health,hist_post_1984"
        );
    }
}

//! `lineage list`: the records passing filters, sorted.

use crate::lineage::filter::{cmp_values, sort_value, Filter};
use crate::lineage::{Lineage, Record};

/// The records passing every filter, sorted by `sort` (ascending unless `reverse`), else by
/// time. Records without the sort key come last.
pub fn list<'l>(
    lineage: &'l Lineage,
    filters: &[Filter],
    sort: Option<&str>,
    reverse: bool,
) -> Vec<&'l Record> {
    let mut v: Vec<&Record> = lineage
        .by_time()
        .into_iter()
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    if let Some(key) = sort {
        v.sort_by(|a, b| {
            let (x, y) = (sort_value(a, key), sort_value(b, key));
            match (&x, &y, reverse) {
                (Some(_), Some(_), true) => cmp_values(&y, &x),
                _ => cmp_values(&x, &y),
            }
        });
    } else if reverse {
        v.reverse();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::samples::{art, two_models};

    #[test]
    fn filters_then_sorts() {
        let l = two_models();
        let f = Filter::parse("metrics.auc>0.5").unwrap();
        let sorted = list(&l, &[f], Some("auc"), true);
        assert_eq!(sorted.len(), 2);
        assert_eq!(sorted[0].outputs[0].digest, art("m", "m2").digest);
        assert_eq!(list(&l, &[], None, true)[0].time, "3");
    }
}

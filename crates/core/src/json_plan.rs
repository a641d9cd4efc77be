//! What one station reads from a JSON payload, as one extraction tree (json_extract.rs): its
//! JA= addresses in tag order, then the message's time field, then for each tag that selects an
//! array element (`values[id="T1"].v`) that element's time and quality fields. So every value,
//! time stamp and quality of a message comes out of the same single pass.

use std::collections::HashMap;

use crate::json_extract::PathTree;
use crate::json_path::JsonPath;
use crate::payload::PayloadSettings;

/// The slots of one JA= tag's item fields (`None`: not configured, or the tag selects no item).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemSlots {
    pub time: Option<usize>,
    pub quality: Option<usize>,
}

/// One station's extraction tree and which slot holds what.
#[derive(Debug, Default)]
pub struct JsonPlan {
    pub tree: PathTree,
    /// The slot of the message's time field.
    pub time: Option<usize>,
    /// Per JA= tag, in tag order (its value is slot `k`).
    pub items: Vec<ItemSlots>,
    /// The address of each slot from `items` on, for warnings.
    item_paths: Vec<JsonPath>,
    tags: usize,
}

impl JsonPlan {
    /// The plan for `paths` (the station's JA= addresses in tag order) with its settings.
    pub fn new(paths: &[&JsonPath], settings: &PayloadSettings) -> JsonPlan {
        let tags = paths.len();
        let mut all: Vec<JsonPath> = paths.iter().map(|p| (*p).clone()).collect();
        let time = settings.time_field.as_ref().map(|f| {
            all.push(f.clone());
            all.len() - 1
        });
        let first_item = all.len();
        let mut by_text: HashMap<String, usize> = HashMap::new();
        let mut slot_of = |path: JsonPath, all: &mut Vec<JsonPath>| -> usize {
            *by_text.entry(path.to_string()).or_insert_with(|| {
                all.push(path);
                all.len() - 1
            })
        };
        let items = paths
            .iter()
            .map(|p| {
                let Some(item) = p.item() else {
                    return ItemSlots::default();
                };
                ItemSlots {
                    time: settings
                        .item_time_field
                        .as_ref()
                        .map(|f| slot_of(item.join(f), &mut all)),
                    quality: settings
                        .item_quality_field
                        .as_ref()
                        .map(|f| slot_of(item.join(f), &mut all)),
                }
            })
            .collect();
        let tree = PathTree::new(&all);
        JsonPlan {
            tree,
            time,
            items,
            item_paths: all.split_off(first_item),
            tags,
        }
    }

    /// The address read into `slot` when it is an item field.
    pub fn item_path(&self, slot: usize) -> Option<&JsonPath> {
        let first = self.tags + usize::from(self.time.is_some());
        slot.checked_sub(first).and_then(|i| self.item_paths.get(i))
    }

    /// A key for sharing one plan between stations with the same addresses and settings.
    pub fn key(paths: &[&JsonPath], settings: &PayloadSettings) -> Vec<String> {
        let text = |p: &Option<JsonPath>| p.as_ref().map_or(String::new(), |p| p.to_string());
        let mut key: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        key.push(text(&settings.time_field));
        key.push(text(&settings.item_time_field));
        key.push(text(&settings.item_quality_field));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LineConfig;
    use crate::station::StationParams;

    #[test]
    fn item_fields_get_one_slot_per_item() {
        let (line, _) = LineConfig::from_params(
            "l",
            [
                ("host", "h"),
                ("payload_type", "JSON"),
                ("time_field_name", "timestamp"),
                ("item_time_field", "t"),
                ("quality_field", "q"),
            ],
        )
        .unwrap();
        let settings = PayloadSettings::resolve("s", &line, &StationParams::default()).unwrap();
        let paths: Vec<JsonPath> = [
            "values[id=A].v",
            "values[id=B].v",
            "values[id=A].v",
            "other",
        ]
        .iter()
        .map(|p| JsonPath::parse(p).unwrap())
        .collect();
        let refs: Vec<&JsonPath> = paths.iter().collect();
        let plan = JsonPlan::new(&refs, &settings);
        assert_eq!(plan.time, Some(4));
        assert_eq!(
            plan.items,
            [
                ItemSlots {
                    time: Some(5),
                    quality: Some(6)
                },
                ItemSlots {
                    time: Some(7),
                    quality: Some(8)
                },
                ItemSlots {
                    time: Some(5),
                    quality: Some(6)
                },
                ItemSlots::default(),
            ]
        );
        assert_eq!(plan.tree.len(), 9);
        assert_eq!(
            plan.item_path(7).map(ToString::to_string).as_deref(),
            Some("values[id=\"B\"].t")
        );
        assert_eq!(plan.item_path(4), None);
    }
}

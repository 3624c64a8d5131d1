//! Tool schemas every MCP client accepts. schemars writes "any JSON" as the boolean schema
//! `true` (and `deny_unknown_fields` as `additionalProperties: false`); the JSON Schema spec
//! allows booleans, but Claude Code's MCP client takes only object schemas and drops the whole
//! tool list when one property is a boolean (2.1.197: `tools/list failed … outputSchema.
//! properties.hierarchy: Invalid input`). Every tool's schemas are rewritten once, when the
//! server starts, into the equivalent object forms: `true` → `{}`, `false` → `{"not": {}}`.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::JsonObject;
use rmcp::schemars::Schema;
use rmcp::schemars::transform::{ReplaceBoolSchemas, Transform};
use serde_json::Value;
use std::sync::Arc;

/// `router` with every tool's input and output schema in object form.
pub(crate) fn objects_only<S>(mut router: ToolRouter<S>) -> ToolRouter<S> {
    for route in router.map.values_mut() {
        let tool = &mut route.attr;
        tool.input_schema = Arc::new(rewrite(&tool.input_schema));
        if let Some(output) = &tool.output_schema {
            tool.output_schema = Some(Arc::new(rewrite(output)));
        }
    }
    router
}

/// One schema with no boolean subschema left.
fn rewrite(schema: &JsonObject) -> JsonObject {
    let mut schema = Schema::from(schema.clone());
    let mut replace = ReplaceBoolSchemas::default();
    replace.skip_additional_properties = false;
    replace.transform(&mut schema);
    match schema.to_value() {
        Value::Object(object) => object,
        // An object schema stays an object under the transform.
        _ => JsonObject::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_become_objects_at_every_depth() {
        let Value::Object(input) = json!({
            "type": "object",
            "properties": {
                "any": true,
                "list": { "type": "array", "items": true },
                "nested": { "type": "object", "additionalProperties": false,
                            "properties": { "deep": true } },
                "either": { "anyOf": [true, { "type": "null" }] }
            },
            "$defs": { "Any": true },
            "additionalProperties": false
        }) else {
            unreachable!()
        };
        let out = Value::Object(rewrite(&input));
        assert_eq!(
            out,
            json!({
                "type": "object",
                "properties": {
                    "any": {},
                    "list": { "type": "array", "items": {} },
                    "nested": { "type": "object", "additionalProperties": { "not": {} },
                                "properties": { "deep": {} } },
                    "either": { "anyOf": [{}, { "type": "null" }] }
                },
                "$defs": { "Any": {} },
                "additionalProperties": { "not": {} }
            })
        );
    }
}

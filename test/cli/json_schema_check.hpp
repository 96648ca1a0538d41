// Test helper: checks a simdjson document against the subset of JSON Schema our schemas use
// (type, required, properties, additionalProperties as a schema, items, enum, minimum, local
// $ref). Any other keyword is reported as an error, so the checker never silently passes
// something it does not understand.
#pragma once

#include <simdjson.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::test {

class SchemaChecker {
 public:
  explicit SchemaChecker(simdjson::dom::element root) : root_(root) {}

  // The violations found, as "path: what"; empty = valid.
  std::vector<std::string> check(simdjson::dom::element doc) {
    errors_.clear();
    visit(root_, doc, "$");
    return errors_;
  }

 private:
  static bool has_type(simdjson::dom::element v, std::string_view t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_bool();
    if (t == "null") return v.is_null();
    if (t == "integer") return v.is_int64() || v.is_uint64();
    if (t == "number") return v.is_int64() || v.is_uint64() || v.is_double();
    return false;
  }

  static double as_number(simdjson::dom::element v) {
    if (v.is_int64()) return static_cast<double>(int64_t(v));
    if (v.is_uint64()) return static_cast<double>(uint64_t(v));
    return double(v);
  }

  void fail(const std::string& path, const std::string& what) { errors_.push_back(path + ": " + what); }

  void visit(simdjson::dom::element schema, simdjson::dom::element v, const std::string& path) {
    static const std::set<std::string_view> known = {"$schema", "$id", "$defs", "title", "description", "$ref", "type",
                                                     "required", "properties", "additionalProperties", "items", "enum",
                                                     "minimum"};
    for (auto [key, unused] : schema.get_object())
      if (!known.count(key)) fail(path, "schema keyword '" + std::string(key) + "' is not supported by this checker");

    simdjson::dom::element sub;
    if (schema["$ref"].get(sub) == simdjson::SUCCESS) {
      std::string_view ref = sub;
      const std::string_view prefix = "#/$defs/";
      simdjson::dom::element target;
      if (!ref.starts_with(prefix) || root_["$defs"][ref.substr(prefix.size())].get(target) != simdjson::SUCCESS) {
        fail(path, "unresolvable $ref " + std::string(ref));
        return;
      }
      visit(target, v, path);
      return;
    }
    if (schema["type"].get(sub) == simdjson::SUCCESS) {
      bool ok = false;
      std::string names;
      if (sub.is_string()) {
        ok = has_type(v, std::string_view(sub));
        names = std::string_view(sub);
      } else {
        for (simdjson::dom::element t : sub.get_array()) {
          ok = ok || has_type(v, std::string_view(t));
          names += std::string(names.empty() ? "" : "|") + std::string(std::string_view(t));
        }
      }
      if (!ok) {
        fail(path, "expected " + names + ", got " + simdjson::minify(v));
        return;
      }
    }
    if (schema["enum"].get(sub) == simdjson::SUCCESS) {
      bool found = false;
      for (simdjson::dom::element e : sub.get_array()) found = found || simdjson::minify(e) == simdjson::minify(v);
      if (!found) fail(path, "value " + simdjson::minify(v) + " is not in the enum");
    }
    if (schema["minimum"].get(sub) == simdjson::SUCCESS && (v.is_int64() || v.is_uint64() || v.is_double()) &&
        as_number(v) < as_number(sub))
      fail(path, "value " + simdjson::minify(v) + " is below the minimum");
    if (v.is_object()) {
      simdjson::dom::object obj = v.get_object();
      if (schema["required"].get(sub) == simdjson::SUCCESS)
        for (simdjson::dom::element k : sub.get_array()) {
          simdjson::dom::element unused;
          if (obj[std::string_view(k)].get(unused) != simdjson::SUCCESS)
            fail(path, "missing required key '" + std::string(std::string_view(k)) + "'");
        }
      simdjson::dom::object props;
      const bool have_props = schema["properties"].get(props) == simdjson::SUCCESS;
      simdjson::dom::element extra;
      const bool have_extra = schema["additionalProperties"].get(extra) == simdjson::SUCCESS;
      for (auto [key, value] : obj) {
        simdjson::dom::element prop;
        if (have_props && props[key].get(prop) == simdjson::SUCCESS) visit(prop, value, path + "." + std::string(key));
        else if (have_extra) visit(extra, value, path + "." + std::string(key));
      }
    }
    if (v.is_array() && schema["items"].get(sub) == simdjson::SUCCESS) {
      size_t i = 0;
      for (simdjson::dom::element item : v.get_array()) visit(sub, item, path + "[" + std::to_string(i++) + "]");
    }
  }

  simdjson::dom::element root_;
  std::vector<std::string> errors_;
};

}  // namespace bitnet::test

(namespace_definition name: (namespace_name) @name) @def.module
(interface_declaration name: (name) @name body: (declaration_list) @body) @def.interface
(trait_declaration name: (name) @name body: (declaration_list) @body) @def.interface
(class_declaration name: (name) @name body: (declaration_list) @body) @def.class
(enum_declaration name: (name) @name body: (enum_declaration_list) @body) @def.enum
(function_definition name: (name) @name body: (compound_statement) @body) @def.function
(method_declaration name: (name) @name body: (compound_statement) @body) @def.method
(method_declaration name: (name) @name) @def.method
(property_declaration (property_element name: (variable_name (name) @name))) @def.field
(const_declaration (const_element (name) @name)) @def.constant

(namespace_use_clause [(qualified_name) (name)] @import)
(include_expression (string (string_content) @import))
(include_once_expression (string (string_content) @import))
(require_expression (string (string_content) @import))
(require_once_expression (string (string_content) @import))

(name) @use

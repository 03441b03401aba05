(interface_declaration name: (type_identifier) @name body: (_) @body) @def.interface
(class_declaration name: (_) @name body: (class_body) @body) @def.class
(abstract_class_declaration name: (_) @name body: (class_body) @body) @def.class
(enum_declaration name: (identifier) @name body: (enum_body) @body) @def.enum
(type_alias_declaration name: (type_identifier) @name) @def.type
(function_declaration name: (identifier) @name body: (statement_block) @body) @def.function
(function_signature name: (identifier) @name) @def.function
(generator_function_declaration name: (identifier) @name body: (statement_block) @body) @def.function
(method_definition name: (_) @name body: (statement_block) @body) @def.method
(method_signature name: (_) @name) @def.method
(abstract_method_signature name: (_) @name) @def.method
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)] @body)) @def.function
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @def.constant)
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @name)) @def.constant))
(public_field_definition name: (_) @name) @def.field
(property_signature name: (_) @name) @def.field
(module name: (_) @name body: (statement_block) @body) @def.module
(internal_module name: (_) @name body: (statement_block) @body) @def.module

(import_statement source: (string (string_fragment) @import))
(export_statement source: (string (string_fragment) @import))
(call_expression function: (identifier) @_require arguments: (arguments . (string (string_fragment) @import)) (#eq? @_require "require"))

(identifier) @use
(property_identifier) @use
(type_identifier) @use

; local: _expression
(function_declaration name: (identifier) @name body: (block) @body) @def.function
(method_declaration
  receiver: (parameter_list (parameter_declaration type: [(type_identifier) @receiver (pointer_type (type_identifier) @receiver) (generic_type type: (type_identifier) @receiver) (pointer_type (generic_type type: (type_identifier) @receiver))]))
  name: (field_identifier) @name body: (block) @body) @def.method
(type_spec name: (type_identifier) @name type: (struct_type (field_declaration_list) @body)) @def.struct
(type_spec name: (type_identifier) @name type: (interface_type)) @def.interface
(type_spec name: (type_identifier) @name) @def.type
(type_alias name: (type_identifier) @name) @def.type
(const_spec name: (identifier) @name) @def.constant
(source_file (var_declaration (var_spec name: (identifier) @name) @def.constant))
(field_declaration name: (field_identifier) @name) @def.field
(method_elem name: (field_identifier) @name) @def.method

(import_spec path: (_) @import)

(identifier) @use
(type_identifier) @use
(field_identifier) @use
(package_identifier) @use

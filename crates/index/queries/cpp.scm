; local: expression
(namespace_definition name: (namespace_identifier) @name body: (declaration_list) @body) @def.module
(class_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.class
(struct_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list) @body) @def.enum
(function_definition declarator: (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name) (operator_name)] @name) body: (_) @body) @def.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier)] @name)) body: (_) @body) @def.function
(function_definition declarator: (reference_declarator (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier)] @name)) body: (_) @body) @def.function
(field_declaration declarator: (function_declarator declarator: [(field_identifier) (identifier)] @name)) @def.method
(declaration declarator: (function_declarator declarator: (identifier) @name)) @def.function
(type_definition declarator: (type_identifier) @name) @def.type
(alias_declaration name: (type_identifier) @name) @def.type
(preproc_function_def name: (identifier) @name) @def.function
(preproc_def name: (identifier) @name) @def.constant
(enumerator name: (identifier) @name) @def.constant
(field_declaration declarator: (field_identifier) @name) @def.field

(preproc_include path: (string_literal (string_content) @import))

(identifier) @use
(type_identifier) @use
(field_identifier) @use
(namespace_identifier) @use

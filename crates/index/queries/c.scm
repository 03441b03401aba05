; local: expression
(function_definition declarator: (function_declarator declarator: (identifier) @name) body: (compound_statement) @body) @def.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)) body: (compound_statement) @body) @def.function
(declaration declarator: (function_declarator declarator: (identifier) @name)) @def.function
(declaration declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @def.function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list) @body) @def.enum
(type_definition declarator: (type_identifier) @name) @def.type
(preproc_function_def name: (identifier) @name) @def.function
(preproc_def name: (identifier) @name) @def.constant
(enumerator name: (identifier) @name) @def.constant
(field_declaration declarator: (field_identifier) @name) @def.field

(preproc_include path: (string_literal (string_content) @import))

(identifier) @use
(type_identifier) @use
(field_identifier) @use

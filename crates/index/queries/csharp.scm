; local: expression
(namespace_declaration name: (_) @name body: (declaration_list) @body) @def.module
(file_scoped_namespace_declaration name: (_) @name) @def.module
(interface_declaration name: (identifier) @name body: (declaration_list) @body) @def.interface
(class_declaration name: (identifier) @name body: (declaration_list) @body) @def.class
(record_declaration name: (identifier) @name) @def.class
(struct_declaration name: (identifier) @name body: (declaration_list) @body) @def.struct
(enum_declaration name: (identifier) @name body: (enum_member_declaration_list) @body) @def.enum
(method_declaration name: (identifier) @name body: (_) @body) @def.method
(method_declaration name: (identifier) @name) @def.method
(constructor_declaration name: (identifier) @name body: (_) @body) @def.method
(property_declaration name: (identifier) @name) @def.field
(field_declaration (variable_declaration (variable_declarator name: (identifier) @name))) @def.field
(enum_member_declaration name: (identifier) @name) @def.constant

(using_directive [(qualified_name) (identifier)] @import)

(identifier) @use

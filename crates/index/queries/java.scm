; local: expression
(interface_declaration name: (identifier) @name body: (interface_body) @body) @def.interface
(annotation_type_declaration name: (identifier) @name body: (_) @body) @def.interface
(class_declaration name: (identifier) @name body: (class_body) @body) @def.class
(record_declaration name: (identifier) @name body: (class_body) @body) @def.class
(enum_declaration name: (identifier) @name body: (enum_body) @body) @def.enum
(method_declaration name: (identifier) @name body: (block) @body) @def.method
(method_declaration name: (identifier) @name) @def.method
(constructor_declaration name: (identifier) @name body: (constructor_body) @body) @def.method
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @def.field
(constant_declaration declarator: (variable_declarator name: (identifier) @name)) @def.constant
(enum_constant name: (identifier) @name) @def.constant

(import_declaration [(scoped_identifier) (identifier)] @import)

(identifier) @use
(type_identifier) @use

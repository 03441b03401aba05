; local: expression
(class_declaration "interface" name: (identifier) @name (class_body)? @body) @def.interface
(class_declaration name: (identifier) @name (enum_class_body) @body) @def.enum
(class_declaration name: (identifier) @name (class_body) @body) @def.class
(class_declaration name: (identifier) @name) @def.class
(object_declaration name: (identifier) @name (class_body) @body) @def.class
(object_declaration name: (identifier) @name) @def.class
(companion_object name: (identifier) @name) @def.class
(function_declaration name: (identifier) @name (function_body) @body) @def.function
(function_declaration name: (identifier) @name) @def.function
(property_declaration (variable_declaration (identifier) @name)) @def.field
(type_alias type: (identifier) @name) @def.type

(import (qualified_identifier) @import)

(identifier) @use

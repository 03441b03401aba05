; local: _expression !function_item.body
(function_item name: (identifier) @name body: (block) @body) @def.function
(function_signature_item name: (identifier) @name) @def.function
(struct_item name: (type_identifier) @name body: (_) @body) @def.struct
(struct_item name: (type_identifier) @name) @def.struct
(union_item name: (type_identifier) @name body: (_) @body) @def.struct
(enum_item name: (type_identifier) @name body: (enum_variant_list) @body) @def.enum
(trait_item name: (type_identifier) @name body: (declaration_list) @body) @def.interface
(type_item name: (type_identifier) @name) @def.type
(const_item name: (identifier) @name) @def.constant
(static_item name: (identifier) @name) @def.constant
(mod_item name: (identifier) @name body: (declaration_list) @body) @def.module
(macro_definition name: (identifier) @name) @def.function
(field_declaration name: (field_identifier) @name) @def.field
(impl_item type: (_) @name body: (declaration_list) @body) @scope

(use_declaration argument: (_) @import)
(mod_item name: (identifier) @import !body)

(identifier) @use
(type_identifier) @use
(field_identifier) @use

package memcell

import (
	"slices"
	"strings"
)

// ManagedFields are the fields the store sets itself: the id, the revision,
// the mirror intent, the audit dates and the soft-delete marks. A new MemCell may not carry
// them and an update may not set them.
var ManagedFields = []string{IDField, APIIDField, RevisionField, IntentField, "created_at", "updated_at", "deleted_at", "deleted_by", "deleted_id"}

// Managed reports whether name is one of ManagedFields.
func Managed(name string) bool {
	return slices.Contains(ManagedFields, name)
}

// CheckFieldName applies the rule every top-level and extra field name must
// meet to be stored in MongoDB and read back: not empty, no leading '$', no
// '.', no NUL. The error is a *FieldError naming the field.
func CheckFieldName(name string) error {
	if name == "" || name[0] == '$' || strings.ContainsAny(name, ".\x00") {
		return &FieldError{Field: name, Rule: "is not a valid field name (empty, starts with $, or holds . or NUL)"}
	}
	return nil
}

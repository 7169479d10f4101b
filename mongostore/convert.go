package mongostore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
)

// toBSON returns the stored form of m: the canonical field order with dates
// as BSON dates, the id as an ObjectId and free-form objects with sorted keys.
func toBSON(m *memcell.MemCell) bson.D {
	d := make(bson.D, 0, 22+len(m.Extra))
	add := func(k string, v any) { d = append(d, bson.E{Key: k, Value: v}) }
	if !m.ID.IsZero() {
		add("_id", bson.ObjectID(m.ID))
	}
	add("user_id", strPtr(m.UserID))
	add("timestamp", dateOrNil(&m.Timestamp))
	add("summary", strPtr(m.Summary))
	add("group_id", strPtr(m.GroupID))
	add("original_data", rawDataBSON(m.OriginalData))
	add("participants", stringsBSON(m.Participants))
	if m.Type == nil {
		add("type", nil)
	} else {
		add("type", string(*m.Type))
	}
	add("subject", strPtr(m.Subject))
	add("keywords", stringsBSON(m.Keywords))
	add("linked_entities", stringsBSON(m.LinkedEntities))
	add("episode", strPtr(m.Episode))
	if m.ForesightMemories == nil {
		add("foresight_memories", nil)
	} else {
		add("foresight_memories", anyBSON(m.ForesightMemories))
	}
	add("event_log", objectBSON(m.EventLog))
	add("extend", objectBSON(m.Extend))
	add("created_at", dateOrNil(m.CreatedAt))
	add("updated_at", dateOrNil(m.UpdatedAt))
	add("deleted_at", dateOrNil(m.DeletedAt))
	add("deleted_by", strPtr(m.DeletedBy))
	add("deleted_id", m.DeletedID)
	add(memcell.RevisionField, m.Revision)
	if !m.Intent.IsZero() {
		add(memcell.IntentField, intentValue(m.Intent))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
		add(k, anyBSON(m.Extra[k]))
	}
	return d
}

func strPtr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func dateOrNil(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return bson.NewDateTimeFromTime(*t)
}

func stringsBSON(ss []string) any {
	if ss == nil {
		return nil
	}
	a := make(bson.A, len(ss))
	for i, s := range ss {
		a[i] = s
	}
	return a
}

func stringMapBSON(m map[string]string) any {
	if m == nil {
		return nil
	}
	d := make(bson.D, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d = append(d, bson.E{Key: k, Value: m[k]})
	}
	return d
}

func objectBSON(m map[string]any) any {
	if m == nil {
		return nil
	}
	d := make(bson.D, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d = append(d, bson.E{Key: k, Value: anyBSON(m[k])})
	}
	return d
}

func rawDataBSON(rds []memcell.RawData) any {
	if rds == nil {
		return nil
	}
	a := make(bson.A, len(rds))
	for i, rd := range rds {
		var msgs any
		if rd.Messages != nil {
			ma := make(bson.A, len(rd.Messages))
			for j, msg := range rd.Messages {
				md := bson.D{
					{Key: "content", Value: msg.Content},
					{Key: "files", Value: stringsBSON(msg.Files)},
					{Key: "extend", Value: stringMapBSON(msg.Extend)},
				}
				for _, k := range slices.Sorted(maps.Keys(msg.Extra)) {
					md = append(md, bson.E{Key: k, Value: anyBSON(msg.Extra[k])})
				}
				ma[j] = md
			}
			msgs = ma
		}
		d := bson.D{
			{Key: "data_type", Value: string(rd.DataType)},
			{Key: "messages", Value: msgs},
			{Key: "meta", Value: stringMapBSON(rd.Meta)},
		}
		for _, k := range slices.Sorted(maps.Keys(rd.Extra)) {
			d = append(d, bson.E{Key: k, Value: anyBSON(rd.Extra[k])})
		}
		a[i] = d
	}
	return a
}

// anyBSON converts a free-form value. Numbers keep their kind: integers
// that fit become int64, everything else float64.
func anyBSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(v), 64) // validated by memcell
		return f
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
		return float64(v)
	case uint32:
		return int64(v)
	case int:
		return int64(v)
	case float32:
		return float64(v)
	case time.Time:
		return bson.NewDateTimeFromTime(v)
	case memcell.ID:
		return bson.ObjectID(v)
	case map[string]any:
		return objectBSON(v)
	case map[string]string:
		return stringMapBSON(v)
	case []string:
		return stringsBSON(v)
	case []any:
		a := make(bson.A, len(v))
		for i, x := range v {
			a[i] = anyBSON(x)
		}
		return a
	}
	return v // nil, bool, string, int32, int64, float64
}

// fromRaw reads a stored document into a MemCell. The mirror intent
// (memcell.IntentField) goes to MemCell.Intent, not among the fields.
func fromRaw(raw bson.Raw) (*memcell.MemCell, error) {
	doc, err := rawDocument(raw)
	if err != nil {
		return nil, err
	}
	delete(doc, memcell.IntentField)
	m, err := memcell.FromMap(doc)
	if err != nil {
		return nil, &memcell.UnreadableError{ID: rawID(raw), Err: err}
	}
	m.Intent = intentOf(raw)
	return m, nil
}

// intentValue is the stored form of a mirror intent: an array holding the
// mark, so that ClearIntents can remove exactly that mark with $pullAll
// under a filter on _id alone (the one filter FerretDB pushes down), and a
// later write's mark survives the clearing of an earlier one.
func intentValue(mark memcell.ID) bson.A {
	return bson.A{bson.ObjectID(mark)}
}

// intentOf returns the last mark of a stored document's mirror intent, the
// zero ID when it has none.
func intentOf(raw bson.Raw) memcell.ID {
	arr, ok := raw.Lookup(memcell.IntentField).ArrayOK()
	if !ok {
		return memcell.ID{}
	}
	vals, err := arr.Values()
	if err != nil || len(vals) == 0 {
		return memcell.ID{}
	}
	oid, _ := vals[len(vals)-1].ObjectIDOK()
	return memcell.ID(oid)
}

// rawID is the _id of a stored document as text: the hex of an ObjectId,
// the value itself otherwise.
func rawID(raw bson.Raw) string {
	v, err := raw.LookupErr("_id")
	if err != nil {
		return "?"
	}
	if oid, ok := v.ObjectIDOK(); ok {
		return oid.Hex()
	}
	if s, ok := v.StringValueOK(); ok {
		return s
	}
	return v.String()
}

func isUnreadable(err error) bool {
	var u *memcell.UnreadableError
	return errors.As(err, &u)
}

func rawDocument(raw bson.Raw) (map[string]any, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, fmt.Errorf("mongostore: malformed BSON: %w", err)
	}
	doc := make(map[string]any, len(elems))
	for _, e := range elems {
		v, err := rawValue(e.Value())
		if err != nil {
			return nil, err
		}
		doc[e.Key()] = v
	}
	return doc, nil
}

// rawValue converts one BSON value to the Go values memcell.FromMap takes.
// BSON types JSON has no word for become strings, so nothing is lost
// silently and the document still encodes.
func rawValue(v bson.RawValue) (any, error) {
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined, bson.TypeMinKey, bson.TypeMaxKey:
		return nil, nil
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeBoolean:
		return v.Boolean(), nil
	case bson.TypeInt32:
		return v.Int32(), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64), nil
		}
		return f, nil
	case bson.TypeDecimal128:
		s := v.Decimal128().String()
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return s, nil // NaN, Infinity, out of range
		}
		return json.Number(s), nil
	case bson.TypeDateTime:
		return time.UnixMilli(v.DateTime()).UTC(), nil
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		return time.Unix(int64(t), 0).UTC(), nil
	case bson.TypeObjectID:
		return memcell.ID(v.ObjectID()), nil
	case bson.TypeEmbeddedDocument:
		return rawDocument(v.Document())
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil, fmt.Errorf("mongostore: malformed BSON array: %w", err)
		}
		a := make([]any, len(vals))
		for i, x := range vals {
			if a[i], err = rawValue(x); err != nil {
				return nil, err
			}
		}
		return a, nil
	case bson.TypeBinary:
		_, data := v.Binary()
		return base64.StdEncoding.EncodeToString(data), nil
	case bson.TypeRegex:
		pattern, opts := v.Regex()
		return "/" + pattern + "/" + opts, nil
	case bson.TypeJavaScript:
		return v.JavaScript(), nil
	case bson.TypeSymbol:
		return v.Symbol(), nil
	}
	return v.String(), nil
}

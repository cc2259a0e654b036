package dbus

import (
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// method describes one method of the interface: its name and its in and out
// arguments as name:signature pairs.
type method struct {
	name    string
	in, out [][2]string
}

// methods is the interface's method table, the source of the introspection data.
// TestIntrospectionMatchesExports checks it against the exported Go methods.
var methods = []method{
	{"ListEnvironments", nil, [][2]string{{"environments", "s"}}},
	{"GetEnvironmentStatus", [][2]string{{"id_or_name", "s"}}, [][2]string{{"status", "s"}}},
	{"GetEnvironmentHash", [][2]string{{"id_or_name", "s"}}, [][2]string{{"env_id", "s"}}},
	{"BuildEnvironment", [][2]string{{"manifest_path", "s"}}, [][2]string{{"result", "s"}}},
	{"BuildNamedEnvironment", [][2]string{{"manifest_path", "s"}, {"name", "s"}}, [][2]string{{"result", "s"}}},
	{"DestroyEnvironment", [][2]string{{"id_or_name", "s"}}, [][2]string{{"result", "s"}}},
	{"RunEnvironment", [][2]string{{"id_or_name", "s"}}, [][2]string{{"result", "s"}}},
	{"RenameEnvironment", [][2]string{{"id_or_name", "s"}, {"new_name", "s"}}, [][2]string{{"result", "s"}}},
	{"ListPresets", nil, [][2]string{{"presets", "s"}}},
	{"GarbageCollect", [][2]string{{"dry_run", "b"}}, [][2]string{{"report", "s"}}},
	{"VerifyStore", nil, [][2]string{{"report", "s"}}},
}

// Property names.
const (
	PropAPIVersion       = "ApiVersion"
	PropStoreRoot        = "StoreRoot"
	PropActiveOperations = "ActiveOperations"
)

// SignalEnvironmentChanged is the signal's member name; its arguments are the
// environment's id and its new lowercase state ("built", "running", ...) or
// "destroyed".
const SignalEnvironmentChanged = "EnvironmentChanged"

// managerNode returns the introspection data of the service's object.
func managerNode() *introspect.Node {
	iface := introspect.Interface{Name: Interface}
	for _, m := range methods {
		im := introspect.Method{Name: m.name}
		for _, a := range m.in {
			im.Args = append(im.Args, introspect.Arg{Name: a[0], Type: a[1], Direction: "in"})
		}
		for _, a := range m.out {
			im.Args = append(im.Args, introspect.Arg{Name: a[0], Type: a[1], Direction: "out"})
		}
		iface.Methods = append(iface.Methods, im)
	}
	iface.Signals = []introspect.Signal{{
		Name: SignalEnvironmentChanged,
		Args: []introspect.Arg{{Name: "env_id", Type: "s"}, {Name: "state", Type: "s"}},
	}}
	iface.Properties = []introspect.Property{
		property(PropAPIVersion, "u", prop.EmitConst),
		property(PropStoreRoot, "s", prop.EmitConst),
		property(PropActiveOperations, "u", prop.EmitTrue),
	}
	return &introspect.Node{
		Name:       string(ObjectPath),
		Interfaces: []introspect.Interface{iface, prop.IntrospectData},
	}
}

func property(name, sig string, emit prop.EmitType) introspect.Property {
	return introspect.Property{
		Name: name, Type: sig, Access: "read",
		Annotations: []introspect.Annotation{{Name: "org.freedesktop.DBus.Property.EmitsChangedSignal", Value: emit.String()}},
	}
}

// parentNodes returns the introspection data of the object path's ancestors ("/",
// "/org", "/org/karapace"), so that tools walking the tree from "/" find the object.
func parentNodes() map[string]*introspect.Node {
	return map[string]*introspect.Node{
		"/":             {Children: []introspect.Node{{Name: "org"}}},
		"/org":          {Children: []introspect.Node{{Name: "karapace"}}},
		"/org/karapace": {Children: []introspect.Node{{Name: "Manager1"}}},
	}
}

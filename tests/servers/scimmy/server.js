// A SCIM 2.0 service provider built the way scimmy's and scimmy-routers' documentation show:
// the bundled User (with the EnterpriseUser extension) and Group resource types declared to
// SCIMMY.Resources with ingress/egress/degress handlers over an in-memory store, served by the
// SCIMMYRouters express middleware with its bearer authentication handler. The
// ServiceProviderConfig is the one scimmy-routers generates (patch, filter, sort and bulk on;
// etag and changePassword off).
//
// Usage: node server.js [PORT]   (or PORT=...; SCIM_TOKEN=... is the bearer token it accepts)
// Serves http://127.0.0.1:PORT/scim/v2
import express from "express";
import {randomUUID} from "node:crypto";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const token = process.env.SCIM_TOKEN;
if (!token) {
    console.error("SCIM_TOKEN must be set to the bearer token the server accepts");
    process.exit(2);
}

// The app's data: plain objects keyed by id, as an application's tables would be.
const users = new Map();
const groups = new Map();

const plain = (instance) => JSON.parse(JSON.stringify(instance));
const conflict = (message) => new SCIMMY.Types.Error(409, "uniqueness", message);
const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);

// Ingress: create (no id) or replace (PUT, and the result of a PATCH applied by scimmy).
function ingress(store, kind, unique) {
    return (resource, instance) => {
        const data = plain(instance);
        delete data.schemas;
        delete data.meta;
        const key = String(data[unique] ?? "").toLowerCase();
        for (const [id, other] of store) {
            if (id !== resource.id && String(other[unique] ?? "").toLowerCase() === key)
                throw conflict(`${kind} with ${unique} '${data[unique]}' already exists`);
        }
        const now = new Date().toISOString();
        if (resource.id) {
            const existing = store.get(resource.id);
            if (!existing) throw notFound(resource.id);
            const saved = {...data, id: resource.id,
                meta: {...existing.meta, lastModified: now}};
            store.set(resource.id, saved);
            return saved;
        }
        const id = randomUUID();
        const saved = {...data, id, meta: {resourceType: kind, created: now, lastModified: now}};
        store.set(id, saved);
        return saved;
    };
}

// Egress: one resource by id, or the list matching the request's filter (scimmy's ListResponse
// then sorts and pages it).
function egress(store) {
    return (resource) => {
        if (resource.id) {
            const found = store.get(resource.id);
            if (!found) throw notFound(resource.id);
            return found;
        }
        const all = [...store.values()];
        return resource.filter ? resource.filter.match(all) : all;
    };
}

function degress(store, after) {
    return (resource) => {
        if (!store.delete(resource.id)) throw notFound(resource.id);
        after?.(resource.id);
    };
}

SCIMMY.Resources.declare(SCIMMY.Resources.User, {
    extensions: [{schema: SCIMMY.Schemas.EnterpriseUser, required: false}],
    ingress: ingress(users, "User", "userName"),
    egress: egress(users),
    degress: degress(users, (id) => {
        // A deleted user leaves every group it was in.
        for (const group of groups.values())
            group.members = (group.members ?? []).filter((m) => m.value !== id);
    })
}).declare(SCIMMY.Resources.Group, {
    ingress: ingress(groups, "Group", "displayName"),
    egress: egress(groups),
    degress: degress(groups)
});

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    docUri: "https://example.com/help/scim-auth.html",
    handler: (request) => {
        if (request.header("Authorization") !== `Bearer ${token}`)
            throw new Error("Authorization failed: a valid bearer token is required");
        return "provisioner";
    }
}));

const server = app.listen(port, "127.0.0.1", () => {
    console.log(`scimmy SCIM server listening on http://127.0.0.1:${server.address().port}/scim/v2`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));

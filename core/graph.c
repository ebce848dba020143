/* Building and checking the graph. Nothing here opens a file or socket:
 * --check runs exactly this. */
#include "graph.h"
#include "log.h"
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Keys the host reads in every section; plugins may not reuse them. */
const struct pp_option pp_core_options[] = {
	{ .name = "plugin", .type = PP_OPT_STRING, .default_value = NULL,
	  .offset = offsetof(struct node_core, plugin),
	  .help = "the plugin that runs this node (pktpipe --list-plugins)" },
	{ .name = "input", .type = PP_OPT_LIST, .item_type = PP_OPT_STRING, .default_value = "",
	  .offset = offsetof(struct node_core, input),
	  .help = "upstream nodes, comma-separated (fan-in); sources take none" },
	{ .name = "thread", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct node_core, thread),
	  .help = "run this node on a thread of its own, fed through a bounded queue" },
	{ .name = "queue", .type = PP_OPT_INT, .default_value = "64", .min = 1, .max = 65536,
	  .offset = offsetof(struct node_core, queue),
	  .help = "batches a threaded node's queue holds; when full, arriving batches are "
		  "dropped (reason queue-full), so a slow node never stalls its producers; "
		  "sources that can wait (pcap-in, zmq-in, nflog) pause at three quarters" },
	PP_OPTION_END,
};

static bool valid_node_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static void free_node(struct pp_node *n)
{
	if (!n)
		return;
	if (n->config) {
		pp_options_free(n->plugin->options, n->config);
		free(n->config);
	}
	pp_options_free(pp_core_options, &n->core);
	while (n->counters) {
		struct node_counter *c = n->counters;

		n->counters = c->next;
		free(c->name);
		free(c);
	}
	free(n->inputs);
	free(n->outputs);
	free(n->name);
	free(n);
}

void pp_graph_free(struct pp_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->count; i++)
		free_node(g->nodes[i]);
	free(g->nodes);
	free(g);
}

static int set_value(void *config, const struct pp_option *o, const char *text,
		     const char *file, int line)
{
	char why[512];

	if (pp_option_parse(o, text, config, why, sizeof(why)) == 0)
		return 0;
	pp_diag(file, line, "%s: %s", o->name, why);
	return -EINVAL;
}

static int set_defaults(const struct pp_node *n, const struct pp_option *table, void *config)
{
	int rc = 0;

	for (const struct pp_option *o = table; o && o->name; o++)
		if (o->default_value && *o->default_value)
			rc |= set_value(config, o, o->default_value, n->conf_path, n->line);
	return rc ? -EINVAL : 0;
}

static int set_plugin_keys(struct pp_node *n, const struct pp_conf_section *s)
{
	int rc = 0;

	for (const struct pp_conf_kv *kv = s->kvs; kv; kv = kv->next) {
		const struct pp_option *o;

		if (pp_option_find(pp_core_options, kv->key))
			continue;
		o = pp_option_find(n->plugin->options, kv->key);
		if (!o) {
			pp_diag(n->conf_path, kv->line,
				"unknown key '%s' for plugin '%s' (see pktpipe --describe %s)",
				kv->key, n->plugin->name, n->plugin->name);
			rc = -EINVAL;
			continue;
		}
		rc |= set_value(n->config, o, kv->value, n->conf_path, kv->line);
	}
	return rc ? -EINVAL : 0;
}

static int set_core_keys(struct pp_node *n, const struct pp_conf_section *s)
{
	int rc = set_defaults(n, pp_core_options, &n->core);

	for (const struct pp_conf_kv *kv = s->kvs; kv; kv = kv->next) {
		const struct pp_option *o = pp_option_find(pp_core_options, kv->key);

		if (o)
			rc |= set_value(&n->core, o, kv->value, n->conf_path, kv->line);
	}
	return rc ? -EINVAL : 0;
}

static int check_required(struct pp_node *n, const struct pp_conf_section *s)
{
	int rc = 0;

	for (const struct pp_option *o = n->plugin->options; o && o->name; o++) {
		if (!o->default_value && !pp_conf_get(s, o->name)) {
			pp_diag(n->conf_path, n->line, "[%s]: missing required key '%s' (%s)",
				n->name, o->name, o->help ? o->help : pp_option_type_name(o));
			rc = -EINVAL;
		}
	}
	return rc;
}

static int configure(struct pp_node *n, const struct pp_conf_section *s)
{
	char why[512] = "";
	int rc;

	n->config = calloc(1, n->plugin->config_size ? n->plugin->config_size : 1);
	if (!n->config)
		return -ENOMEM;
	rc = set_defaults(n, n->plugin->options, n->config);
	rc |= set_plugin_keys(n, s);
	rc |= check_required(n, s);
	if (rc)
		return -EINVAL;
	if (n->plugin->validate && n->plugin->validate(n->config, why, sizeof(why)) < 0) {
		pp_diag(n->conf_path, n->line, "[%s]: %s", n->name, why);
		return -EINVAL;
	}
	return 0;
}

static int load_plugin(struct pp_node *n, const struct pp_conf_section *s)
{
	const struct pp_conf_kv *kv = pp_conf_get(s, "plugin");
	const struct pp_loaded *l;
	char err[1024];

	if (!kv || !n->core.plugin) {
		pp_diag(n->conf_path, n->line, "[%s]: missing 'plugin =' (which plugin runs this node)",
			n->name);
		return -EINVAL;
	}
	if (pp_loader_load(n->core.plugin, &l, err, sizeof(err)) < 0) {
		pp_diag(n->conf_path, kv->line, "%s", err);
		return -EINVAL;
	}
	if (!(l->plugin->roles & (PP_ROLE_SOURCE | PP_ROLE_FILTER | PP_ROLE_SINK | PP_ROLE_SERVICE))) {
		pp_diag(n->conf_path, kv->line, "plugin '%s' only offers codecs and cannot be a node",
			kv->value);
		return -EINVAL;
	}
	n->plugin = l->plugin;
	return 0;
}

static int new_node(const struct pp_conf *conf, const struct pp_conf_section *s,
		    struct pp_node **out)
{
	struct pp_node *n = calloc(1, sizeof(*n));
	int rc;

	if (!n || !(n->name = strdup(s->name))) {
		free(n);
		return -ENOMEM;
	}
	n->conf_path = conf->path;
	n->line = s->line;
	*out = n;
	if (!valid_node_name(s->name)) {
		pp_diag(conf->path, s->line, "bad node name [%s] (use letters, digits, - _ .)",
			s->name);
		return -EINVAL;
	}
	rc = set_core_keys(n, s);
	rc |= load_plugin(n, s);
	if (n->plugin)
		rc |= configure(n, s);
	return rc ? -EINVAL : 0;
}

static struct pp_node *find_node(struct pp_node **nodes, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (nodes[i] && strcmp(nodes[i]->name, name) == 0)
			return nodes[i];
	return NULL;
}

static int add_edge(struct pp_node *from, struct pp_node *to)
{
	struct pp_node **in = realloc(to->inputs, (to->ninputs + 1) * sizeof(*in));
	struct pp_node **out;

	if (!in)
		return -ENOMEM;
	to->inputs = in;
	out = realloc(from->outputs, (from->noutputs + 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	from->outputs = out;
	to->inputs[to->ninputs++] = from;
	from->outputs[from->noutputs++] = to;
	return 0;
}

static int link_input(struct pp_node **nodes, size_t count, struct pp_node *n,
		      const char *name, int line)
{
	struct pp_node *from = find_node(nodes, count, name);

	if (!from) {
		pp_diag(n->conf_path, line, "input '%s' names no [section]", name);
		return -EINVAL;
	}
	if (from == n) {
		pp_diag(n->conf_path, line, "[%s] cannot be its own input", n->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < n->ninputs; i++) {
		if (n->inputs[i] == from) {
			pp_diag(n->conf_path, line, "input '%s' listed twice", name);
			return -EINVAL;
		}
	}
	return add_edge(from, n);
}

static int link_inputs(struct pp_node **nodes, size_t count, struct pp_node *n,
		       const struct pp_conf_section *s)
{
	const struct pp_conf_kv *kv = pp_conf_get(s, "input");
	int rc = 0;

	if (!kv)
		return 0;
	for (size_t i = 0; i < n->core.input.count; i++)
		rc |= link_input(nodes, count, n, n->core.input.str[i], kv->line);
	if (rc == 0 && n->ninputs == 0) {
		pp_diag(n->conf_path, kv->line, "'input =' names no node");
		rc = -EINVAL;
	}
	return rc ? -EINVAL : 0;
}

static int input_line(const struct pp_node *n, const struct pp_conf *conf)
{
	for (const struct pp_conf_section *s = conf->sections; s; s = s->next) {
		if (strcmp(s->name, n->name) == 0) {
			const struct pp_conf_kv *kv = pp_conf_get(s, "input");

			return kv ? kv->line : s->line;
		}
	}
	return n->line;
}

/* The role a node plays follows from its edges; its plugin must offer it. */
static int check_role(const struct pp_node *n, const struct pp_conf *conf)
{
	unsigned r = n->plugin->roles;
	const char *p = n->plugin->name, *f = n->conf_path;

	if (n->ninputs && !(r & (PP_ROLE_FILTER | PP_ROLE_SINK))) {
		pp_diag(f, input_line(n, conf), "[%s]: plugin '%s' is a %s and takes no input",
			n->name, p, (r & PP_ROLE_SOURCE) ? "source" : "service");
	} else if (!n->ninputs && !(r & (PP_ROLE_SOURCE | PP_ROLE_SERVICE))) {
		pp_diag(f, n->line, "[%s]: plugin '%s' needs 'input =' (it is a %s)", n->name, p,
			(r & PP_ROLE_FILTER) ? "filter" : "sink");
	} else if (n->noutputs && !(r & (PP_ROLE_SOURCE | PP_ROLE_FILTER))) {
		pp_diag(f, n->line, "[%s]: plugin '%s' is a %s and cannot be an input of [%s]",
			n->name, p, (r & PP_ROLE_SINK) ? "sink" : "service", n->outputs[0]->name);
	} else if (!n->noutputs && !(r & (PP_ROLE_SINK | PP_ROLE_SERVICE))) {
		pp_diag(f, n->line, "[%s] feeds no node: nothing names it in 'input =' (plugin '%s' is a %s)",
			n->name, p, (r & PP_ROLE_FILTER) ? "filter" : "source");
	} else if (!n->ninputs && n->noutputs && !(r & PP_ROLE_SOURCE)) {
		pp_diag(f, n->line, "[%s]: plugin '%s' produces no packets and cannot be an input",
			n->name, p);
	} else if (n->ninputs && n->noutputs && !(r & PP_ROLE_FILTER)) {
		pp_diag(f, n->line, "[%s]: plugin '%s' is a sink and cannot be an input of [%s]",
			n->name, p, n->outputs[0]->name);
	} else {
		return 0;
	}
	return -EINVAL;
}

/* Kahn's algorithm: sources first; what remains lies on a cycle. */
static int topo_sort(struct pp_graph *g, const struct pp_conf *conf)
{
	size_t *pending = calloc(g->count, sizeof(*pending));
	struct pp_node **order = calloc(g->count, sizeof(*order));
	size_t done = 0, head = 0;
	int rc = 0;

	if (!pending || !order) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g->count; i++) {
		pending[i] = g->nodes[i]->ninputs;
		if (!pending[i])
			order[done++] = g->nodes[i];
	}
	for (; head < done; head++) {
		struct pp_node *n = order[head];

		for (size_t o = 0; o < n->noutputs; o++) {
			size_t j = 0;

			while (g->nodes[j] != n->outputs[o])
				j++;
			if (--pending[j] == 0)
				order[done++] = g->nodes[j];
		}
	}
	if (done < g->count) {
		for (size_t i = 0; i < g->count; i++) {
			if (pending[i]) {
				pp_diag(conf->path, input_line(g->nodes[i], conf),
					"[%s] is part of a cycle of inputs", g->nodes[i]->name);
				rc = -EINVAL;
				break;
			}
		}
		goto out;
	}
	memcpy(g->nodes, order, g->count * sizeof(*order));
out:
	free(pending);
	free(order);
	return rc;
}

static int build_nodes(const struct pp_conf *conf, struct pp_graph *g)
{
	int rc = 0;
	size_t n = 0;

	for (const struct pp_conf_section *s = conf->sections; s; s = s->next)
		n++;
	g->nodes = calloc(n, sizeof(*g->nodes));
	if (!g->nodes)
		return -ENOMEM;
	for (const struct pp_conf_section *s = conf->sections; s; s = s->next) {
		int r = new_node(conf, s, &g->nodes[g->count]);

		if (g->nodes[g->count])
			g->nodes[g->count++]->graph = g;
		if (r == -ENOMEM)
			return r;
		rc |= r;
	}
	return rc ? -EINVAL : 0;
}

static int build_edges(const struct pp_conf *conf, struct pp_graph *g)
{
	const struct pp_conf_section *s = conf->sections;
	int rc = 0;

	for (size_t i = 0; i < g->count; i++, s = s->next)
		rc |= link_inputs(g->nodes, g->count, g->nodes[i], s);
	if (rc)
		return -EINVAL;
	for (size_t i = 0; i < g->count; i++)
		rc |= check_role(g->nodes[i], conf);
	if (rc)
		return -EINVAL;
	return topo_sort(g, conf);
}

int pp_graph_build(const struct pp_conf *conf, struct pp_graph **out)
{
	struct pp_graph *g = calloc(1, sizeof(*g));
	int rc;

	if (!g)
		return -ENOMEM;
	rc = build_nodes(conf, g);
	/* Edges are checked even when a node's keys were bad, so that one
	 * run reports every problem; a missing plugin leaves roles unknown. */
	if (rc != -ENOMEM) {
		bool plugins_ok = true;

		for (size_t i = 0; i < g->count; i++)
			plugins_ok &= g->nodes[i]->plugin != NULL;
		if (plugins_ok)
			rc |= build_edges(conf, g);
	}
	if (rc) {
		pp_graph_free(g);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	*out = g;
	return 0;
}

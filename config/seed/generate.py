#!/usr/bin/env python3
"""Deterministic generator for the storenode demo seed data.

Writes catalog.csv, stock.csv, customers.csv and carts.csv next to this
script. Everything derives from a fixed RNG seed, so re-running the script
produces byte-identical files.

    python3 config/seed/generate.py

All data is fictitious: EANs use made-up manufacturer numbers under the
Spanish 84 prefix, emails are at example.com / example.es, and phone numbers
are random.
"""

import csv
import io
import os
import random
import unicodedata

SEED = 20250101
OUT_DIR = os.path.dirname(os.path.abspath(__file__))

VAT_SUPER = 400   # superreducido: pan, leche, huevos, queso, fruta, verdura, legumbres, cereales, aceite de oliva, libros, higiene femenina, preservativos
VAT_RED = 1000    # reducido: resto de alimentación, agua, zumos sin azúcar añadido
VAT_GEN = 2100    # general: alcohol, bebidas azucaradas, droguería, higiene, electrónica, juguetes, papelería

# (category, fictitious 5-digit manufacturer number used in the EAN, products)
# product = (name, price_cents, vat_bp)
CATALOG = [
    ("basicos", "10234", [
        ("Leche entera 1 L", 99, VAT_SUPER),
        ("Leche semidesnatada 1 L", 95, VAT_SUPER),
        ("Leche desnatada 1 L", 92, VAT_SUPER),
        ("Leche semidesnatada sin lactosa 1 L", 129, VAT_SUPER),
        ("Leche entera, pack 6 x 1 L", 579, VAT_SUPER),
        ("Huevos frescos camperos L, docena", 329, VAT_SUPER),
        ("Huevos frescos M, media docena", 159, VAT_SUPER),
        ("Pan de molde blanco 460 g", 145, VAT_SUPER),
        ("Pan de molde integral sin corteza 450 g", 199, VAT_SUPER),
        ("Barra de pan rústica 250 g", 85, VAT_SUPER),
        ("Pan de pueblo hogaza 800 g", 265, VAT_SUPER),
        ("Harina de trigo 1 kg", 89, VAT_SUPER),
        ("Arroz bomba DO Calasparra 1 kg", 495, VAT_SUPER),
        ("Arroz redondo 1 kg", 135, VAT_SUPER),
        ("Garbanzos pedrosillanos 1 kg", 269, VAT_SUPER),
        ("Lentejas pardinas 1 kg", 215, VAT_SUPER),
        ("Alubias blancas de León 500 g", 245, VAT_SUPER),
        ("Aceite de oliva virgen extra 1 L", 899, VAT_SUPER),
        ("Aceite de oliva virgen extra picual 5 L", 3995, VAT_SUPER),
        ("Aceite de oliva suave 1 L", 749, VAT_SUPER),
    ]),
    ("quesos", "20517", [
        ("Queso manchego curado DOP, cuña 250 g", 595, VAT_SUPER),
        ("Queso manchego semicurado DOP, cuña 300 g", 549, VAT_SUPER),
        ("Queso tetilla DOP 800 g", 899, VAT_SUPER),
        ("Queso Idiazábal ahumado DOP 250 g", 645, VAT_SUPER),
        ("Queso de Cabrales DOP 200 g", 725, VAT_SUPER),
        ("Queso fresco de Burgos 250 g", 189, VAT_SUPER),
        ("Torta del Casar DOP 500 g", 1495, VAT_SUPER),
        ("Queso Mahón-Menorca curado DOP 250 g", 575, VAT_SUPER),
        ("Queso de cabra en rulo 200 g", 299, VAT_SUPER),
        ("Queso rallado mezcla 150 g", 179, VAT_SUPER),
    ]),
    ("fruteria", "31108", [
        ("Manzana Golden, 1 kg", 199, VAT_SUPER),
        ("Naranjas de zumo, malla 2 kg", 299, VAT_SUPER),
        ("Plátano de Canarias IGP, 1 kg", 249, VAT_SUPER),
        ("Tomate de ensalada, 1 kg", 229, VAT_SUPER),
        ("Patatas, malla 3 kg", 399, VAT_SUPER),
        ("Cebolla, malla 2 kg", 219, VAT_SUPER),
        ("Pimiento rojo, 1 kg", 279, VAT_SUPER),
        ("Lechuga iceberg, unidad", 99, VAT_SUPER),
        ("Limones, malla 1 kg", 189, VAT_SUPER),
        ("Fresas de Huelva 500 g", 249, VAT_SUPER),
        ("Aguacate Hass, unidad", 119, VAT_SUPER),
        ("Ajos morados de Las Pedroñeras, malla 250 g", 169, VAT_SUPER),
        ("Pera conferencia, 1 kg", 229, VAT_SUPER),
        ("Calabacín, 1 kg", 189, VAT_SUPER),
        ("Mandarinas, malla 1,5 kg", 279, VAT_SUPER),
    ]),
    ("charcuteria", "42760", [
        ("Jamón ibérico de bellota 100 g", 1295, VAT_RED),
        ("Jamón ibérico de bellota 100% raza ibérica, loncheado a cuchillo 80 g", 1890, VAT_RED),
        ("Jamón serrano gran reserva, loncheado 150 g", 399, VAT_RED),
        ("Paleta ibérica de cebo, loncheada 100 g", 599, VAT_RED),
        ("Chorizo ibérico de bellota, sarta 250 g", 549, VAT_RED),
        ("Salchichón ibérico, loncheado 100 g", 329, VAT_RED),
        ("Lomo embuchado ibérico, loncheado 100 g", 795, VAT_RED),
        ("Fuet extra 170 g", 249, VAT_RED),
        ("Sobrasada de Mallorca IGP 250 g", 389, VAT_RED),
        ("Morcilla de Burgos 400 g", 269, VAT_RED),
        ("Chistorra de Navarra 250 g", 299, VAT_RED),
        ("Cecina de León IGP, loncheada 100 g", 549, VAT_RED),
    ]),
    ("despensa", "53391", [
        ("Aceite de girasol 1 L", 229, VAT_RED),
        ("Vinagre de Jerez DO 500 ml", 289, VAT_RED),
        ("Café molido natural 250 g", 349, VAT_RED),
        ("Café molido mezcla 50/50 250 g", 299, VAT_RED),
        ("Café en grano natural 1 kg", 1349, VAT_RED),
        ("Café descafeinado molido 250 g", 369, VAT_RED),
        ("Cápsulas de café espresso intenso, 10 uds", 289, VAT_RED),
        ("Cacao soluble 760 g", 449, VAT_RED),
        ("Té verde, 20 bolsitas", 159, VAT_RED),
        ("Infusión de manzanilla, 25 bolsitas", 129, VAT_RED),
        ("Azúcar blanco 1 kg", 125, VAT_RED),
        ("Sal marina 1 kg", 49, VAT_RED),
        ("Espaguetis 500 g", 99, VAT_RED),
        ("Macarrones 500 g", 99, VAT_RED),
        ("Fideos para fideuá 500 g", 129, VAT_RED),
        ("Pan rallado 500 g", 109, VAT_RED),
        ("Picos de pan camperos 250 g", 179, VAT_RED),
        ("Tomate triturado 800 g", 119, VAT_RED),
        ("Tomate frito 400 g", 109, VAT_RED),
        ("Garbanzos cocidos, tarro 400 g", 99, VAT_RED),
        ("Fabada asturiana, lata 420 g", 329, VAT_RED),
        ("Caldo de pollo 1 L", 169, VAT_RED),
        ("Mayonesa 450 ml", 219, VAT_RED),
        ("Ketchup 560 g", 199, VAT_RED),
        ("Miel de romero 500 g", 549, VAT_RED),
        ("Mermelada de fresa extra 340 g", 219, VAT_RED),
        ("Pimentón de la Vera DOP dulce 75 g", 249, VAT_RED),
        ("Azafrán en hebra de La Mancha DOP 1 g", 899, VAT_RED),
        ("Galletas María, pack 4 x 200 g", 229, VAT_RED),
        ("Magdalenas de aceite de oliva, 12 uds", 219, VAT_RED),
        ("Copos de avena integrales 500 g", 149, VAT_RED),
        ("Cereales de maíz tostado 500 g", 189, VAT_RED),
        ("Tostadas de trigo, 30 uds", 159, VAT_RED),
        ("Chocolate negro 70% cacao 100 g", 179, VAT_RED),
        ("Chocolate con leche y almendras 150 g", 229, VAT_RED),
        ("Patatas fritas al aceite de oliva 160 g", 189, VAT_RED),
        ("Almendras marconas fritas con sal 150 g", 399, VAT_RED),
        ("Pistachos tostados 200 g", 449, VAT_RED),
        ("Pipas de girasol tostadas 200 g", 119, VAT_RED),
        ("Aceitunas manzanilla rellenas de anchoa 350 g", 139, VAT_RED),
        ("Aceitunas gordal aliñadas 400 g", 299, VAT_RED),
        ("Potito de verduras con pollo 250 g", 129, VAT_RED),
        ("Leche de continuación en polvo 800 g", 1495, VAT_RED),
    ]),
    ("conservas", "64025", [
        ("Atún claro en aceite de oliva, pack 3 x 80 g", 379, VAT_RED),
        ("Bonito del norte en aceite de oliva 250 g", 799, VAT_RED),
        ("Mejillones en escabeche 8/12 piezas 115 g", 249, VAT_RED),
        ("Berberechos al natural 35/45 piezas 111 g", 599, VAT_RED),
        ("Sardinillas en aceite de oliva 90 g", 229, VAT_RED),
        ("Anchoas del Cantábrico en aceite de oliva 50 g", 695, VAT_RED),
        ("Pimientos del piquillo de Lodosa DOP 250 g", 379, VAT_RED),
        ("Espárragos blancos de Navarra IGP 6/9 turiones", 599, VAT_RED),
        ("Pulpo a la gallega en aceite 111 g", 549, VAT_RED),
        ("Ventresca de atún claro 110 g", 649, VAT_RED),
    ]),
    ("refrigerado", "75840", [
        ("Gazpacho andaluz 1 L", 269, VAT_RED),
        ("Salmorejo cordobés 1 L", 289, VAT_RED),
        ("Tortilla de patatas con cebolla 600 g", 399, VAT_RED),
        ("Croquetas de jamón ibérico congeladas 500 g", 449, VAT_RED),
        ("Yogur natural, pack 4 x 125 g", 119, VAT_RED),
        ("Yogur griego natural, pack 4 x 115 g", 209, VAT_RED),
        ("Natillas de vainilla, pack 4 x 125 g", 149, VAT_RED),
        ("Flan de huevo, pack 4 x 100 g", 169, VAT_RED),
        ("Arroz con leche, pack 4 x 125 g", 199, VAT_RED),
        ("Mantequilla sin sal 250 g", 289, VAT_RED),
        ("Nata para cocinar 200 ml", 99, VAT_RED),
        ("Pechuga de pollo fileteada 500 g", 479, VAT_RED),
        ("Carne picada de vacuno y cerdo 500 g", 449, VAT_RED),
        ("Lomo de cerdo en filetes 500 g", 529, VAT_RED),
        ("Merluza del Cabo congelada, lomos 400 g", 699, VAT_RED),
        ("Gambas peladas congeladas 400 g", 849, VAT_RED),
        ("Salmón ahumado noruego 100 g", 449, VAT_RED),
        ("Pulpo cocido, pata 200 g", 1190, VAT_RED),
        ("Churros congelados 500 g", 229, VAT_RED),
        ("Hummus clásico 240 g", 199, VAT_RED),
        ("Pizza jamón y queso congelada 400 g", 279, VAT_RED),
    ]),
    ("navidad", "86472", [
        ("Turrón de Jijona IGP 300 g", 749, VAT_RED),
        ("Turrón de Alicante IGP 300 g", 749, VAT_RED),
        ("Turrón de yema tostada 300 g", 499, VAT_RED),
        ("Polvorones de Estepa IGP 380 g", 449, VAT_RED),
        ("Mazapán de Toledo IGP 200 g", 599, VAT_RED),
        ("Peladillas de Alcoy 200 g", 399, VAT_RED),
        ("Roscón de Reyes relleno de nata 500 g", 1295, VAT_RED),
    ]),
    ("bebidas", "97306", [
        ("Agua mineral natural 1,5 L", 45, VAT_RED),
        ("Agua mineral natural, pack 6 x 1,5 L", 249, VAT_RED),
        ("Agua mineral natural 50 cl", 35, VAT_RED),
        ("Agua mineral con gas 1 L", 89, VAT_RED),
        ("Zumo de naranja exprimido 100% 1 L", 299, VAT_RED),
        ("Zumo de melocotón y uva sin azúcares añadidos 1 L", 169, VAT_RED),
        ("Bebida de avena 1 L", 165, VAT_RED),
        ("Horchata de chufa de Valencia DO 1 L", 279, VAT_GEN),
        ("Refresco de cola 2 L", 199, VAT_GEN),
        ("Refresco de naranja con gas 2 L", 169, VAT_GEN),
        ("Gaseosa 1,5 L", 79, VAT_GEN),
        ("Bebida isotónica limón 1,5 L", 189, VAT_GEN),
    ]),
    ("bodega", "18233", [
        ("Rioja crianza DOCa 75 cl", 895, VAT_GEN),
        ("Rioja reserva DOCa 75 cl", 1450, VAT_GEN),
        ("Ribera del Duero roble DO 75 cl", 995, VAT_GEN),
        ("Priorat DOQ tinto 75 cl", 1895, VAT_GEN),
        ("Albariño Rías Baixas DO 75 cl", 1195, VAT_GEN),
        ("Verdejo Rueda DO 75 cl", 649, VAT_GEN),
        ("Txakoli de Getaria DO 75 cl", 1095, VAT_GEN),
        ("Cava brut DO 75 cl", 599, VAT_GEN),
        ("Cava brut nature reserva DO 75 cl", 995, VAT_GEN),
        ("Fino de Jerez DO 75 cl", 795, VAT_GEN),
        ("Manzanilla de Sanlúcar DO 75 cl", 749, VAT_GEN),
        ("Pedro Ximénez DO 50 cl", 1395, VAT_GEN),
        ("Sidra natural de Asturias DOP 70 cl", 279, VAT_GEN),
        ("Cerveza lager, pack 6 x 33 cl", 449, VAT_GEN),
        ("Cerveza tostada artesana 33 cl", 199, VAT_GEN),
        ("Vermut rojo 1 L", 899, VAT_GEN),
        ("Tinto de verano con limón 1,5 L", 229, VAT_GEN),
        ("Sangría 1,5 L", 299, VAT_GEN),
        ("Pacharán navarro 70 cl", 1195, VAT_GEN),
        ("Orujo de hierbas de Galicia 70 cl", 1395, VAT_GEN),
        ("Brandy de Jerez solera reserva 70 cl", 1695, VAT_GEN),
        ("Ginebra destilada 70 cl", 1995, VAT_GEN),
    ]),
    ("hogar", "29641", [
        ("Detergente líquido, 40 lavados", 899, VAT_GEN),
        ("Suavizante concentrado, 72 lavados", 449, VAT_GEN),
        ("Lavavajillas a mano 750 ml", 189, VAT_GEN),
        ("Pastillas lavavajillas todo en 1, 30 uds", 849, VAT_GEN),
        ("Lejía con detergente 2 L", 169, VAT_GEN),
        ("Limpiador multiusos pulverizador 750 ml", 229, VAT_GEN),
        ("Friegasuelos aroma pino 1,5 L", 249, VAT_GEN),
        ("Quitagrasas cocina 750 ml", 279, VAT_GEN),
        ("Papel higiénico doble capa, 12 rollos", 449, VAT_GEN),
        ("Rollo de cocina, 4 uds", 329, VAT_GEN),
        ("Servilletas de papel 33 x 33, 100 uds", 149, VAT_GEN),
        ("Bolsas de basura 30 L con autocierre, 15 uds", 139, VAT_GEN),
        ("Estropajo verde con esponja, 3 uds", 119, VAT_GEN),
        ("Bayetas de microfibra, 4 uds", 299, VAT_GEN),
        ("Papel de aluminio 30 m", 249, VAT_GEN),
        ("Film transparente 50 m", 199, VAT_GEN),
        ("Pinzas para tender, 24 uds", 249, VAT_GEN),
        ("Fregona de microfibra con palo", 699, VAT_GEN),
        ("Cubo de fregar con escurridor 12 L", 899, VAT_GEN),
        ("Ambientador eléctrico con recambio", 499, VAT_GEN),
        ("Insecticida volador 600 ml", 399, VAT_GEN),
        ("Cerillas de cocina, 3 cajas", 99, VAT_GEN),
        ("Sartén antiadherente 24 cm", 1499, VAT_GEN),
        ("Cafetera italiana de aluminio, 6 tazas", 1695, VAT_GEN),
        ("Paellera de acero pulido 40 cm", 1295, VAT_GEN),
        ("Olla a presión 6 L", 4995, VAT_GEN),
        ("Juego de 6 vasos de vidrio 36 cl", 599, VAT_GEN),
        ("Recipientes herméticos para alimentos, 3 uds", 799, VAT_GEN),
        ("Perchas de madera, 8 uds", 699, VAT_GEN),
        ("Tendedero plegable de aluminio 18 m", 2495, VAT_GEN),
    ]),
    ("higiene", "30718", [
        ("Gel de ducha dermoprotector 750 ml", 249, VAT_GEN),
        ("Champú anticaspa 400 ml", 399, VAT_GEN),
        ("Acondicionador nutritivo 400 ml", 349, VAT_GEN),
        ("Pasta de dientes con flúor 75 ml", 199, VAT_GEN),
        ("Cepillo de dientes medio, 2 uds", 249, VAT_GEN),
        ("Enjuague bucal sin alcohol 500 ml", 349, VAT_GEN),
        ("Hilo dental mentolado 50 m", 229, VAT_GEN),
        ("Desodorante roll-on 50 ml", 229, VAT_GEN),
        ("Crema hidratante facial 50 ml", 699, VAT_GEN),
        ("Protector solar SPF 50+ 200 ml", 1295, VAT_GEN),
        ("Maquinillas de afeitar desechables, 5 uds", 399, VAT_GEN),
        ("Espuma de afeitar piel sensible 250 ml", 249, VAT_GEN),
        ("Jabón de manos con dosificador 500 ml", 169, VAT_GEN),
        ("Colonia fresca de baño 750 ml", 599, VAT_GEN),
        ("Bastoncillos de algodón, 200 uds", 119, VAT_GEN),
        ("Discos desmaquillantes, 80 uds", 129, VAT_GEN),
        ("Laca fijación extrafuerte 400 ml", 349, VAT_GEN),
        ("Pañales talla 4 (9-15 kg), 44 uds", 1299, VAT_GEN),
        ("Toallitas húmedas para bebé, 80 uds", 199, VAT_GEN),
        ("Compresas normales con alas, 16 uds", 199, VAT_SUPER),
        ("Tampones regular, 32 uds", 329, VAT_SUPER),
        ("Preservativos, 12 uds", 999, VAT_SUPER),
    ]),
    ("electronica", "41953", [
        ("Auriculares inalámbricos Bluetooth con estuche de carga", 2999, VAT_GEN),
        ("Cargador USB-C 20 W", 1499, VAT_GEN),
        ("Cable USB-C a USB-C 1 m", 799, VAT_GEN),
        ("Batería externa 10.000 mAh", 1995, VAT_GEN),
        ("Pilas alcalinas AA, pack 8", 699, VAT_GEN),
        ("Pilas alcalinas AAA, pack 4", 399, VAT_GEN),
        ("Bombilla LED E27 10 W luz cálida", 349, VAT_GEN),
        ("Regleta de 4 enchufes con interruptor 1,5 m", 1295, VAT_GEN),
        ("Altavoz Bluetooth portátil resistente al agua", 3995, VAT_GEN),
        ("Ratón inalámbrico", 1299, VAT_GEN),
        ("Teclado inalámbrico con ñ (distribución española)", 2499, VAT_GEN),
        ("Memoria USB 64 GB", 999, VAT_GEN),
        ("Tarjeta microSD 128 GB", 1799, VAT_GEN),
        ("Hervidor eléctrico 1,7 L", 2499, VAT_GEN),
        ("Tostadora de 2 ranuras", 2295, VAT_GEN),
        ("Batidora de mano 600 W", 2995, VAT_GEN),
        ("Secador de pelo 2000 W", 2495, VAT_GEN),
        ("Plancha de vapor 2400 W", 3495, VAT_GEN),
        ("Báscula de baño digital", 1495, VAT_GEN),
        ("Despertador digital con radio FM", 1995, VAT_GEN),
        ("Linterna LED recargable", 1295, VAT_GEN),
        ("Televisor LED 32\" HD", 17999, VAT_GEN),
        ("Calculadora científica", 1695, VAT_GEN),
    ]),
    ("juguetes", "52684", [
        ("Puzle 1000 piezas Picos de Europa", 1495, VAT_GEN),
        ("Balón de fútbol talla 5", 1299, VAT_GEN),
        ("Muñeca articulada con accesorios", 1999, VAT_GEN),
        ("Coche teledirigido todoterreno", 3499, VAT_GEN),
        ("Bloques de construcción, 500 piezas", 2499, VAT_GEN),
        ("Plastilina, 6 colores", 399, VAT_GEN),
        ("Juego de mesa \"La oca y el parchís\"", 1295, VAT_GEN),
        ("Baraja española de 40 cartas", 299, VAT_GEN),
        ("Peonza de madera con cuerda", 499, VAT_GEN),
        ("Cubo y pala de playa, 5 piezas", 499, VAT_GEN),
        ("Cometa de nailon 90 cm", 899, VAT_GEN),
        ("Pistola de agua 30 cm", 599, VAT_GEN),
        ("Peluche osito 30 cm", 1199, VAT_GEN),
        ("Peluche pingüino 25 cm", 999, VAT_GEN),
        ("Dominó de 28 fichas en caja de madera", 899, VAT_GEN),
        ("Comba de saltar con mangos de madera", 399, VAT_GEN),
        ("Tizas de colores para suelo, 20 uds", 349, VAT_GEN),
        ("Pompas de jabón, pack 4", 299, VAT_GEN),
        ("¡Al agua patos! juego de pesca magnético", 1495, VAT_GEN),
    ]),
    ("libros", "63215", [
        ("Don Quijote de la Mancha, edición escolar", 1295, VAT_SUPER),
        ("Lazarillo de Tormes, edición de bolsillo", 695, VAT_SUPER),
        ("La casa de Bernarda Alba, edición de bolsillo", 795, VAT_SUPER),
        ("Platero y yo, edición ilustrada", 1495, VAT_SUPER),
        ("Recetas tradicionales de la cocina española", 2195, VAT_SUPER),
        ("Diccionario escolar de la lengua española", 1895, VAT_SUPER),
        ("Atlas de España y del mundo", 1995, VAT_SUPER),
        ("Guía de viaje: Andalucía", 2290, VAT_SUPER),
        ("Cuento ilustrado ¿Dónde está el pequeño erizo?", 1250, VAT_SUPER),
        ("¡Aprende a leer! Cartilla 1", 595, VAT_SUPER),
        ("Cuaderno de vacaciones 3.º de Primaria", 895, VAT_SUPER),
        ("Libro de pasatiempos: sopas de letras", 495, VAT_SUPER),
    ]),
    ("papeleria", "74508", [
        ("Cuaderno espiral A4 cuadrícula 80 hojas", 249, VAT_GEN),
        ("Bolígrafos azules, pack 4", 199, VAT_GEN),
        ("Lápices de grafito HB, pack 12", 299, VAT_GEN),
        ("Goma de borrar blanca, 2 uds", 99, VAT_GEN),
        ("Sacapuntas con depósito", 149, VAT_GEN),
        ("Rotuladores de colores, 12 uds", 349, VAT_GEN),
        ("Pegamento en barra 21 g", 179, VAT_GEN),
        ("Tijeras escolares punta redonda", 199, VAT_GEN),
        ("Carpeta de 4 anillas A4", 349, VAT_GEN),
        ("Folios A4 80 g, 500 hojas", 599, VAT_GEN),
        ("Agenda semanal 2026", 899, VAT_GEN),
        ("Notas adhesivas 76 x 76 mm, 4 blocs", 399, VAT_GEN),
        ("Cinta adhesiva transparente, 3 rollos", 199, VAT_GEN),
        ("Subrayadores fluorescentes, 4 colores", 329, VAT_GEN),
        ("Regla de 30 cm", 99, VAT_GEN),
        ("Estuche escolar con cremallera", 599, VAT_GEN),
    ]),
]

FIRST_NAMES = [
    "María", "José", "Lucía", "Javier", "Carmen", "Álvaro", "Sofía", "Sergio",
    "Ana Belén", "Íñigo", "Martina", "Raúl", "Inés", "Jesús", "Begoña", "Óscar",
    "Marta", "Adrián", "Nuria", "Rubén", "Pilar", "Andrés", "Rocío", "Tomás",
    "María José", "José Luis", "Ainhoa", "Joaquín", "Elena", "Héctor", "Noelia",
    "Iván", "Ángela", "Ramón", "Paula", "Víctor", "Verónica", "Gonzalo", "Irene",
    "Nicolás", "Alba", "Hugo", "Mónica", "Fermín", "Leire", "Julián", "Concepción",
    "Darío", "Sonia", "Agustín",
]

SURNAMES = [
    "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
    "Pérez", "Gómez", "Martín", "Jiménez", "Hernández", "Díaz", "Moreno", "Muñoz",
    "Álvarez", "Romero", "Gutiérrez", "Navarro", "Ruiz", "Domínguez", "Vázquez",
    "Ramos", "Gil", "Ramírez", "Serrano", "Blanco", "Suárez", "Molina", "Ortega",
    "Núñez", "Ibáñez", "Peña", "Castaño", "Argüelles", "Agüero", "Echeverría",
    "Beltrán", "Cortés", "Méndez", "Calvo", "Garrido", "Muñiz", "Santos",
    "Etxeberria", "O'Donnell", "Sáez", "Quiñones",
]

# Common surnames appear far more often than rare ones (O'Donnell, Argüelles...).
RARE_SURNAMES = {"Argüelles", "Agüero", "Echeverría", "Etxeberria", "O'Donnell", "Quiñones", "Muñiz", "Castaño"}
SURNAME_WEIGHTS = [1 if s in RARE_SURNAMES else 6 for s in SURNAMES]


def ean13_check_digit(first12: str) -> int:
    assert len(first12) == 12 and first12.isdigit()
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def ean13(first12: str) -> str:
    return first12 + str(ean13_check_digit(first12))


def ascii_fold(s: str) -> str:
    nfkd = unicodedata.normalize("NFKD", s)
    return "".join(c for c in nfkd if not unicodedata.combining(c))


def email_local(first: str, surname: str) -> str:
    def part(x):
        return "".join(c for c in ascii_fold(x).lower() if c.isalnum())
    return part(first.split()[0]) + "." + part(surname)


def write_csv(name: str, header, rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    with open(os.path.join(OUT_DIR, name), "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def build_catalog(rng):
    rows = []
    seen_ean = set()
    n = 0
    for cat, maker, products in CATALOG:
        item_numbers = rng.sample(range(100, 100000), len(products))
        for (name, price, vat), item in zip(products, item_numbers):
            n += 1
            sku = f"SKU-{n:06d}"
            ean = ean13("84" + maker + f"{item:05d}")
            assert ean not in seen_ean
            seen_ean.add(ean)
            rows.append((sku, ean, name, price, vat, cat))
    return rows


def stock_qty(rng) -> int:
    r = rng.random()
    if r < 0.03:
        return 0
    if r < 0.06:
        return 1
    if r < 0.09:
        return 2
    if r < 0.30:
        return rng.randint(3, 15)
    if r < 0.75:
        return rng.randint(16, 60)
    return rng.randint(61, 120)


def build_stock(rng, catalog):
    rows = []
    for store, coverage in (("madrid-centro", 1.0), ("sevilla-nervion", 0.9)):
        skus = [r[0] for r in catalog]
        if coverage < 1.0:
            k = round(len(skus) * coverage)
            skus = sorted(rng.sample(skus, k))
        qtys = [stock_qty(rng) for _ in skus]
        # Guarantee the availability edge cases exist in every store.
        for i, q in zip(range(3), (0, 1, 2)):
            qtys[rng.randrange(len(qtys))] = q
        rows.extend((store, s, q) for s, q in zip(skus, qtys))
    return rows


def build_customers(rng):
    rows = []
    used_names, used_emails, used_phones, used_cards = set(), set(), set(), set()
    firsts = FIRST_NAMES[:]
    rng.shuffle(firsts)
    for i, first in enumerate(firsts[:50], start=1):
        while True:
            s1, s2 = rng.choices(SURNAMES, weights=SURNAME_WEIGHTS, k=2)
            if s1 == s2:
                continue
            full = f"{first} {s1} {s2}"
            if full not in used_names:
                break
        used_names.add(full)

        domain = "example.es" if rng.random() < 0.4 else "example.com"
        local = email_local(first, s1)
        email = f"{local}@{domain}"
        k = 2
        while email in used_emails:
            email = f"{local}{k}@{domain}"
            k += 1
        used_emails.add(email)

        while True:
            if rng.random() < 0.8:
                phone = "+346" + f"{rng.randrange(10**8):08d}"
            else:
                phone = "+347" + str(rng.randint(1, 4)) + f"{rng.randrange(10**7):07d}"
            if phone not in used_phones:
                break
        used_phones.add(phone)

        while True:
            card = ean13("2" + f"{rng.randrange(10**11):011d}")
            if card not in used_cards:
                break
        used_cards.add(card)

        c_email = rng.random() < 0.7
        c_sms = rng.random() < 0.35
        c_wa = rng.random() < 0.5
        b = lambda x: "true" if x else "false"
        rows.append((f"C-{i:04d}", full, email, phone, card, b(c_email), b(c_sms), b(c_wa)))
    return rows


def build_carts(rng, catalog, customers):
    skus = [r[0] for r in catalog]
    ids = sorted(rng.sample([c[0] for c in customers], 15))
    rows = []
    for cid in ids:
        lines = rng.randint(1, 6)
        for sku in rng.sample(skus, lines):
            rows.append((cid, sku, rng.randint(1, 4)))
    return rows


def main():
    rng = random.Random(SEED)
    catalog = build_catalog(rng)
    stock = build_stock(rng, catalog)
    customers = build_customers(rng)
    carts = build_carts(rng, catalog, customers)

    write_csv("catalog.csv", ("sku", "ean", "name", "price_cents", "vat_bp", "category"), catalog)
    write_csv("stock.csv", ("store", "sku", "qty"), stock)
    write_csv("customers.csv",
              ("id", "name", "email", "phone", "loyalty_card",
               "consent_email", "consent_sms", "consent_whatsapp"), customers)
    write_csv("carts.csv", ("customer", "sku", "qty"), carts)
    print(f"catalog={len(catalog)} stock={len(stock)} customers={len(customers)} cart_lines={len(carts)}")


if __name__ == "__main__":
    main()
